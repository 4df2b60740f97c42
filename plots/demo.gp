# The demo figure (`make demo`): training loss and kNN top-1 / top-5 (%) vs epoch of the two demo
# runs, MoCo vs MoCo + Un-Mix on Fashion-MNIST, from their metrics.csv (epoch, loss, knn_top1,
# knn_top5). A missing run is left out.
#   gnuplot -e "runs='results/demo/runs'; out='results/demo/demo_curves'" plots/demo.gp
# Inputs: moco, unmix (metrics.csv paths; default runs/fmnist_moco_sym[_unmix]/metrics.csv), tag.
if (!exists("runs")) runs = 'results/demo/runs'
if (!exists("out")) out = 'results/demo/demo_curves'
if (!exists("moco")) moco = runs.'/fmnist_moco_sym/metrics.csv'
if (!exists("unmix")) unmix = runs.'/fmnist_moco_sym_unmix/metrics.csv'
if (!exists("tag")) tag = ''
readable(f) = int(system("test -r '".f."' && echo 1 || echo 0"))
ha = readable(moco); hb = readable(unmix)
set datafile separator comma
set grid
set key box opaque
set xlabel 'Epoch'
set style line 1 lc rgb '#3b6ea5' lw 2 pt 7 ps 0.9
set style line 2 lc rgb '#e07b39' lw 2 pt 5 ps 0.9
set style line 3 lc rgb '#3b6ea5' lw 1.5 pt 6 ps 0.9 dt 2
set style line 4 lc rgb '#e07b39' lw 1.5 pt 4 ps 0.9 dt 2
do for [fmt in "png svg"] {
  if (fmt eq "png") { set terminal pngcairo size 1300,520 font 'sans,11'; set output out.'.png' } \
  else { set terminal svg size 1300,520 font 'sans,11' dynamic; set output out.'.svg' }
  set multiplot layout 1,2 title 'Demo: MoCo vs MoCo + Un-Mix on Fashion-MNIST (CPU)'.(tag ne '' ? ' ['.tag.']' : '')
  set title 'training loss'
  set ylabel 'Loss'
  set key top right
  if (ha && hb) {
    plot moco using 'epoch':'loss' with linespoints ls 1 title 'MoCo', unmix using 'epoch':'loss' with linespoints ls 2 title '+ Un-Mix'
  } else { if (ha) { plot moco using 'epoch':'loss' with linespoints ls 1 title 'MoCo (+ Un-Mix: not run)'
  } else { if (hb) { plot unmix using 'epoch':'loss' with linespoints ls 2 title '+ Un-Mix (MoCo: not run)'
  } else { set label 1 'no run yet' at graph 0.5,0.5 center; set key off; plot [0:1][0:1] NaN notitle; set key on; unset label 1 } } }
  set title 'kNN accuracy on the test set'
  set ylabel 'kNN Acc. (%)'
  set key bottom right
  if (ha && hb) {
    plot moco using 'epoch':'knn_top1' with linespoints ls 1 title 'MoCo top-1', \
         unmix using 'epoch':'knn_top1' with linespoints ls 2 title '+ Un-Mix top-1', \
         moco using 'epoch':'knn_top5' with linespoints ls 3 title 'MoCo top-5', \
         unmix using 'epoch':'knn_top5' with linespoints ls 4 title '+ Un-Mix top-5'
  } else { if (ha) { plot moco using 'epoch':'knn_top1' with linespoints ls 1 title 'MoCo top-1', moco using 'epoch':'knn_top5' with linespoints ls 3 title 'MoCo top-5'
  } else { if (hb) { plot unmix using 'epoch':'knn_top1' with linespoints ls 2 title '+ Un-Mix top-1', unmix using 'epoch':'knn_top5' with linespoints ls 4 title '+ Un-Mix top-5'
  } else { set label 1 'no run yet' at graph 0.5,0.5 center; set key off; plot [0:1][0:1] NaN notitle; set key on; unset label 1 } } }
  unset multiplot
  set output
}
