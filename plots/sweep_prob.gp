# Sweep of P (probability of the global mixture; else the region mixture): kNN top-1 (%) vs P,
# CIFAR-10 MoCo symmetric + Un-Mix, from the table `unmix collect` writes (results/sweep-prob.csv:
# columns prob, ours, ours_std, seeds, status). Dashed lines: the paper's MoCo and MoCo + Un-Mix (P = 0.5) numbers
# from the paper table (ref, default results/cifar-moco.csv), when that file is there.
#   gnuplot -e "in='results/sweep-prob.csv'; out='results/figures/sweep_prob'" plots/sweep_prob.gp
# Inputs: in, out, ref, dataset (default cifar10), tag (a title note; default: from the table's status column).
if (!exists("in")) in = 'results/sweep-prob.csv'
if (!exists("out")) out = 'results/figures/sweep_prob'
if (!exists("ref")) ref = 'results/cifar-moco.csv'
if (!exists("dataset")) dataset = 'cifar10'
if (!exists("tag")) tag = ''
xcol = 'prob'; xlab = 'P (probability of the global mixture)'; what = 'P'
readable(f) = int(system("test -r '".f."' && echo 1 || echo 0"))
# the table's own status column marks the figure, so a re-plot by hand keeps the SMOKE/partial note
nstat(s) = int(system(sprintf("awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i==\"status\") c=i; next} c && $c==\"%s\" {n++} END{print n+0}' '%s'", s, in)))
if (tag eq '' && readable(in)) { tag = (nstat('smoke') > 0 ? 'SMOKE RUN - not the paper protocol' : (nstat('partial') > 0 ? 'partial runs: fewer epochs than the paper' : '')) }
if (!readable(in)) { print 'sweep_prob.gp: cannot read '.in; exit status 1 }
# the paper's number of a cifar-moco row (dataset, variant symmetric, unmix u), or "" when absent
paper(u) = !readable(ref) ? '' : system(sprintf("awk -F, 'NR==1{for(i=1;i<=NF;i++) h[$i]=i; next} $h[\"dataset\"]==\"%s\" && $h[\"variant\"]==\"symmetric\" && $h[\"unmix\"]==\"%s\" {print $h[\"paper\"]; exit}' '%s'", dataset, u, ref))
# the std over seeds (make SEEDS=n): error bars; a table without the column, or one seed, gives none
hasstd = int(system(sprintf("head -n 1 '%s' | tr ',' '\\n' | grep -cx ours_std", in)))
maxseeds = int(system(sprintf("awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i==\"seeds\") c=i; next} c && $c+0>m {m=$c+0} END{print m+0}' '%s'", in)))
err(x) = (x == x) ? x : 0
sd(dummy) = hasstd ? err(column('ours_std')) : 0
nours = int(system(sprintf("awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i==\"ours\") o=i; next} $o!=\"\" {n++} END{print n+0}' '%s'", in)))
p_moco = paper('no'); p_unmix = paper('yes')
set datafile separator comma
set datafile missing NaN
set grid
set key bottom right box opaque
set xlabel xlab noenhanced
set ylabel 'kNN top-1 (%)'
set style line 1 lc rgb '#e07b39' lw 2 pt 7 ps 1.4
if (p_moco ne '') { set arrow 1 from graph 0, first real(p_moco) to graph 1, first real(p_moco) nohead dt 2 lc rgb '#3b6ea5' lw 1.5
                    set label 1 sprintf('paper: MoCo %s', p_moco) at graph 0.02, first real(p_moco) offset 0,0.6 tc rgb '#3b6ea5' }
if (p_unmix ne '') { set arrow 2 from graph 0, first real(p_unmix) to graph 1, first real(p_unmix) nohead dt 2 lc rgb '#e07b39' lw 1.5
                     set label 2 sprintf('paper: + Un-Mix (P = 0.5) %s', p_unmix) at graph 0.02, first real(p_unmix) offset 0,0.6 tc rgb '#e07b39' }
# the y range holds our points and the paper's lines
if (nours > 0) { stats in using (column('ours') - sd(0)):(column('ours') + sd(0)) nooutput; lo = STATS_min_x; hi = STATS_max_y } else { lo = 1e9; hi = -1e9 }
if (p_moco ne '') { lo = (real(p_moco) < lo ? real(p_moco) : lo); hi = (real(p_moco) > hi ? real(p_moco) : hi) }
if (p_unmix ne '') { lo = (real(p_unmix) < lo ? real(p_unmix) : lo); hi = (real(p_unmix) > hi ? real(p_unmix) : hi) }
if (hi >= lo) { pad = (hi - lo) * 0.12 + 0.5; set yrange [lo - pad : hi + pad] }
set offsets graph 0.05, graph 0.05, 0, 0
do for [fmt in "png svg"] {
  if (fmt eq "png") { set terminal pngcairo size 900,600 font 'sans,11'; set output out.'.png' } \
  else { set terminal svg size 900,600 font 'sans,11' dynamic; set output out.'.svg' }
  set title 'Un-Mix: kNN top-1 vs '.what.' ('.dataset.', MoCo symmetric)'.(tag ne '' ? ' ['.tag.']' : '')
  if (nours > 0) {
    plot in using xcol:'ours':(sd(0)) with yerrorlines ls 1 title (maxseeds > 1 ? sprintf('ours (mean +- std over up to %d seeds)', maxseeds) : 'ours'), \
         in using xcol:'ours':(sprintf('%.2f', column('ours'))) with labels offset 0,1.2 notitle
  } else {
    set label 3 'no sweep run yet' at graph 0.5, 0.5 center
    set key off; plot [0:1][0:100] NaN notitle; set key on
    unset label 3
  }
  set output
}
