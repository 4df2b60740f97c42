# SwAV on CIFAR: linear top-1 (%) vs pre-training epochs, SwAV vs SwAV + Un-Mix, CIFAR-10 and
# CIFAR-100 side by side; the paper's numbers (lines) next to ours (points, labelled), from a
# table written by `unmix collect` (results/swav-cifar-repo.csv or results/swav-cifar-paper.csv:
# columns dataset, unmix, epochs, ours, ours_std, paper, status; error bars: the std over seeds).
#   gnuplot -e "in='results/swav-cifar-repo.csv'; out='results/figures/swav_epochs_repo'" plots/swav_epochs.gp
# Inputs: in, out, tag (a title note; default: from the table's status column).
if (!exists("in")) in = 'results/swav-cifar-repo.csv'
if (!exists("out")) out = 'results/figures/swav_epochs_repo'
if (!exists("tag")) tag = ''
readable(f) = int(system("test -r '".f."' && echo 1 || echo 0"))
if (!readable(in)) { print 'swav_epochs.gp: cannot read '.in; exit status 1 }
# the table's own status column marks the figure, so a re-plot by hand keeps the SMOKE/partial note
nstat(s) = int(system(sprintf("awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i==\"status\") c=i; next} c && $c==\"%s\" {n++} END{print n+0}' '%s'", s, in)))
if (tag eq '') { tag = (nstat('smoke') > 0 ? 'SMOKE RUN - not the paper protocol' : (nstat('partial') > 0 ? 'partial runs: fewer epochs than the paper' : '')) }
# rows of a dataset with Un-Mix yes/no; anything else is NaN (skipped)
sel(ds, u, col) = (strcol('dataset') eq ds && strcol('unmix') eq u) ? column(col) : NaN
has_ours(ds) = int(system(sprintf("awk -F, 'NR==1{for(i=1;i<=NF;i++){if($i==\"dataset\")d=i; if($i==\"ours\")o=i}; next} $d==\"%s\" && $o!=\"\" {n++} END{print n+0}' '%s'", ds, in)))
# the std over seeds (make SEEDS=n): error bars on our marks; none without the column or with one seed
hasstd = int(system(sprintf("head -n 1 '%s' | tr ',' '\\n' | grep -cx ours_std", in)))
err(x) = (x == x) ? x : 0
sd(ds, u) = (hasstd && strcol('dataset') eq ds && strcol('unmix') eq u) ? err(column('ours_std')) : 0
set datafile separator comma
set datafile missing NaN
set grid ytics
set key bottom right box opaque
set xlabel 'pre-training epochs'
set ylabel 'linear top-1 (%)'
set xtics 200
# accuracies: 1.5 points of room for the value labels, never an axis up to 110% (graph offsets did that)
set offsets graph 0.05, graph 0.05, 1.5, 1.5
set yrange [*:*<100]
set style line 1 lc rgb '#3b6ea5' lw 3 pt 5 ps 1.3
set style line 2 lc rgb '#e07b39' lw 3 pt 7 ps 1.3
set style line 3 lc rgb '#3b6ea5' lw 1 pt 4 ps 2.0
set style line 4 lc rgb '#e07b39' lw 1 pt 6 ps 2.0
array ds[2] = ['cifar10', 'cifar100']
array dsname[2] = ['CIFAR-10', 'CIFAR-100']
do for [fmt in "png svg"] {
  if (fmt eq "png") { set terminal pngcairo size 1400,560 font 'sans,11'; set output out.'.png' } \
  else { set terminal svg size 1400,560 font 'sans,11' dynamic; set output out.'.svg' }
  set multiplot layout 1,2 title 'SwAV vs SwAV + Un-Mix on CIFAR (lines: paper; open marks and values: ours)'.(tag ne '' ? ' ['.tag.']' : '')
  do for [d=1:2] {
    D = ds[d]
    set title 'on '.dsname[d].(has_ours(D) ? '' : ' (ours: not run)')
    if (has_ours(D)) {
      plot in using (sel(D, 'no', 'epochs')):(sel(D, 'no', 'paper')) with linespoints ls 1 title 'SwAV (paper)', \
           in using (sel(D, 'yes', 'epochs')):(sel(D, 'yes', 'paper')) with linespoints ls 2 title '+ Un-Mix (paper)', \
           in using (sel(D, 'no', 'epochs')):(sel(D, 'no', 'ours')):(sd(D, 'no')) with yerrorbars ls 3 title 'SwAV (ours)', \
           in using (sel(D, 'yes', 'epochs')):(sel(D, 'yes', 'ours')):(sd(D, 'yes')) with yerrorbars ls 4 title '+ Un-Mix (ours)', \
           in using (sel(D, 'no', 'epochs')):(sel(D, 'no', 'ours')):(sprintf('%.1f', column('ours'))) with labels offset 0,-1.3 font ',9' tc rgb '#3b6ea5' notitle, \
           in using (sel(D, 'yes', 'epochs')):(sel(D, 'yes', 'ours')):(sprintf('%.1f', column('ours'))) with labels offset 0,1.3 font ',9' tc rgb '#e07b39' notitle
    } else {
      plot in using (sel(D, 'no', 'epochs')):(sel(D, 'no', 'paper')) with linespoints ls 1 title 'SwAV (paper)', \
           in using (sel(D, 'yes', 'epochs')):(sel(D, 'yes', 'paper')) with linespoints ls 2 title '+ Un-Mix (paper)'
    }
  }
  unset multiplot
  set output
}
