# Figure 5: weight histograms, 2 x 3 panels (the first six layers of the CSV, in file order),
# each overlaying every checkpoint of the CSV (e.g. MoCo vs MoCo + Un-Mix), from the tidy CSV
# that `unmix hist` writes (columns layer, checkpoint, bin_lo, bin_hi, count, density).
#   gnuplot -e "in='results/figures/fig5_hist.csv'; out='results/figures/fig5_hist'" plots/fig5_hist.gp
# Inputs: in (the CSV), tag (a title note). Checkpoints are labelled by their run directory
# (the path's parent) unless label1.. label4 are given. Writes out.png and out.svg.
if (!exists("in")) in = 'results/figures/fig5_hist.csv'
if (!exists("out")) out = 'results/figures/fig5_hist'
if (!exists("tag")) tag = ''
if (!int(system("test -r '".in."' && echo 1 || echo 0"))) { print 'fig5_hist.gp: cannot read '.in; exit status 1 }
# distinct values of a column, in order of first appearance (one per line)
distinct(col) = system(sprintf("awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i==\"%s\") c=i; next} c && !seen[$c]++ {print $c}' '%s'", col, in))
nth(list, i) = system(sprintf("printf '%%s\\n' '%s' | sed -n '%dp'", list, i))
layers = distinct('layer')
ckpts = distinct('checkpoint')
nl = int(system(sprintf("printf '%%s\\n' '%s' | grep -c .", layers)))
nc = int(system(sprintf("printf '%%s\\n' '%s' | grep -c .", ckpts)))
if (nl > 6) nl = 6
if (nc > 4) nc = 4
# a checkpoint's label: its run directory's name (".../RUN/checkpoint.safetensors" -> RUN)
runname(p) = system(sprintf("n='%s'; case \"$n\" in */*) d=${n%%/*}; echo ${d##*/};; *) echo \"$n\";; esac", p))
array colors[4] = ['#3b6ea5', '#e07b39', '#3a9a5b', '#b03a48']
array lab[4]
array ck[4]
array lay[6]
do for [j=1:nc] { ck[j] = nth(ckpts, j); lab[j] = exists(sprintf('label%d', j)) ? value(sprintf('label%d', j)) : runname(ck[j]) }
do for [i=1:nl] { lay[i] = nth(layers, i) }
set datafile separator comma
set grid
set style fill transparent solid 0.35 noborder
set key top right box opaque font ',9'
set xlabel 'weight'
set ylabel 'density'
do for [fmt in "png svg"] {
  if (fmt eq "png") { set terminal pngcairo size 1500,900 font 'sans,10'; set output out.'.png' } \
  else { set terminal svg size 1500,900 font 'sans,10' dynamic; set output out.'.svg' }
  set multiplot layout 2,3 title 'Weight histograms'.(tag ne '' ? ' ['.tag.']' : '')
  do for [i=1:nl] {
    L = lay[i]
    set title L noenhanced
    plot for [j=1:nc] in using (strcol('layer') eq L && strcol('checkpoint') eq ck[j] ? \
         (column('bin_lo') + column('bin_hi')) / 2 : NaN):'density':(column('bin_hi') - column('bin_lo')) \
         with boxes lc rgb colors[j] title lab[j] noenhanced
  }
  unset multiplot
  set output
}
