# Figure 2 (MoCo row): training loss and kNN top-1 vs epoch, MoCo vs MoCo + Un-Mix, on CIFAR-10
# and CIFAR-100, from the runs' metrics.csv (columns epoch, loss, knn_top1). A missing run
# is left out of its panel (a panel with no run says so).
#   gnuplot -e "runs='results/runs'; out='results/figures/fig2_cifar_curves'" plots/fig2_cifar_curves.gp
# Inputs (each may be set alone): c10_moco, c10_unmix, c100_moco, c100_unmix (metrics.csv
# paths; default runs/<cifar10|cifar100>_moco_sym[_unmix]/metrics.csv); tag: a note for the title
# (e.g. "SMOKE RUN"). Writes out.png (pngcairo) and out.svg.
if (!exists("runs")) runs = 'results/runs'
if (!exists("out")) out = 'results/figures/fig2_cifar_curves'
if (!exists("c10_moco")) c10_moco = runs.'/cifar10_moco_sym/metrics.csv'
if (!exists("c10_unmix")) c10_unmix = runs.'/cifar10_moco_sym_unmix/metrics.csv'
if (!exists("c100_moco")) c100_moco = runs.'/cifar100_moco_sym/metrics.csv'
if (!exists("c100_unmix")) c100_unmix = runs.'/cifar100_moco_sym_unmix/metrics.csv'
if (!exists("tag")) tag = ''
readable(f) = int(system("test -r '".f."' && echo 1 || echo 0"))
# integer epoch tics when there are few epochs (the epoch is the first column)
lastep(f) = readable(f) ? int(system("awk -F, 'NR>1 && $1!=\"\" {n=$1} END{print n+0}' '".f."'")) : 0
ep = 0; ep = (lastep(c10_moco) > ep ? lastep(c10_moco) : ep); ep = (lastep(c10_unmix) > ep ? lastep(c10_unmix) : ep); ep = (lastep(c100_moco) > ep ? lastep(c100_moco) : ep); ep = (lastep(c100_unmix) > ep ? lastep(c100_unmix) : ep);
if (ep > 0 && ep <= 12) { set xtics 1 }
if (ep == 1) { set xrange [0.5:1.5] }
set datafile separator comma
set grid
set key top right box opaque
set xlabel 'Epoch'
set style line 1 lc rgb '#3b6ea5' lw 2 pt 7 ps 0.6
set style line 2 lc rgb '#e07b39' lw 2 pt 5 ps 0.6
array files[4] = [c10_moco, c10_unmix, c100_moco, c100_unmix]
array names[2] = ['CIFAR-10', 'CIFAR-100']
do for [fmt in "png svg"] {
  if (fmt eq "png") { set terminal pngcairo size 1400,900 font 'sans,11'; set output out.'.png' } \
  else { set terminal svg size 1400,900 font 'sans,11' dynamic; set output out.'.svg' }
  set multiplot layout 2,2 title 'MoCo vs MoCo + Un-Mix on CIFAR: training loss and kNN top-1'.(tag ne '' ? ' ['.tag.']' : '')
  do for [d=1:2] {
    a = files[2*d-1]; b = files[2*d]
    ha = readable(a); hb = readable(b)
    do for [panel in "loss knn_top1"] {
      set title names[d].(panel eq 'loss' ? ': training loss' : ': kNN top-1 (%)')
      set ylabel (panel eq 'loss' ? 'Loss' : 'kNN Acc. (%)')
      if (panel eq 'loss') { set key top right } else { set key bottom right }
      if (ha && hb) {
        plot a using 'epoch':panel with linespoints ls 1 title 'MoCo', \
             b using 'epoch':panel with linespoints ls 2 title '+ Un-Mix'
      } else { if (ha) {
        plot a using 'epoch':panel with linespoints ls 1 title 'MoCo (+ Un-Mix: not run)'
      } else { if (hb) {
        plot b using 'epoch':panel with linespoints ls 2 title '+ Un-Mix (MoCo: not run)'
      } else {
        set label 1 'no run yet' at graph 0.5, 0.5 center
        set key off; plot [0:1][0:1] NaN notitle; set key on
        unset label 1
      } } }
    }
  }
  unset multiplot
  set output
}
