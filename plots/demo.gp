# The demo figure (`make demo`): training loss, kNN top-1 and kNN top-5 (%) vs epoch of the two demo
# runs, MoCo vs MoCo + Un-Mix on Fashion-MNIST, from their metrics.csv (epoch, loss, knn_top1,
# knn_top5), with the raw-pixel and untrained-network levels of the same kNN (baseline.csv of
# `unmix baseline`) as horizontal lines. A missing run is left out.
#   gnuplot -e "runs='results/demo/runs'; out='results/demo/demo_curves'; baseline='results/demo/baseline.csv'" plots/demo.gp
# Inputs: moco, unmix (metrics.csv paths; default runs/fmnist_moco_sym[_unmix]/metrics.csv), baseline, tag.
if (!exists("runs")) runs = 'results/demo/runs'
if (!exists("out")) out = 'results/demo/demo_curves'
if (!exists("moco")) moco = runs.'/fmnist_moco_sym/metrics.csv'
if (!exists("unmix")) unmix = runs.'/fmnist_moco_sym_unmix/metrics.csv'
if (!exists("tag")) tag = ''
if (!exists("baseline")) baseline = runs.'/../baseline.csv'
readable(f) = int(system("test -r '".f."' && echo 1 || echo 0"))
ha = readable(moco); hb = readable(unmix); hbase = readable(baseline)
# a baseline.csv value: row (raw-pixels | untrained), column (top1 | top5)
bval(row, col) = real(system("awk -F, -v r=".row." -v c=".col." 'NR==1{for(i=1;i<=NF;i++) if($i==c) k=i; next} $1==r{print $k+0}' '".baseline."'"))
# integer epoch tics when there are few epochs (the epoch is the first column)
lastep(f) = readable(f) ? int(system("awk -F, 'NR>1 && $1!=\"\" {n=$1} END{print n+0}' '".f."'")) : 0
ep = 0; ep = (lastep(moco) > ep ? lastep(moco) : ep); ep = (lastep(unmix) > ep ? lastep(unmix) : ep);
if (ep > 0 && ep <= 12) { set xtics 1 }
if (ep == 1) { set xrange [0.5:1.5] }
set datafile separator comma
set grid
set key box opaque
set xlabel 'Epoch'
set style line 1 lc rgb '#3b6ea5' lw 2 pt 7 ps 0.9
set style line 2 lc rgb '#e07b39' lw 2 pt 5 ps 0.9
set style line 3 lc rgb '#222222' lw 2 dt 2
set style line 4 lc rgb '#888888' lw 2 dt 3
do for [fmt in "png svg"] {
  if (fmt eq "png") { set terminal pngcairo size 1500,480 font 'sans,11'; set output out.'.png' } \
  else { set terminal svg size 1500,480 font 'sans,11' dynamic; set output out.'.svg' }
  set multiplot layout 1,3 title 'Demo: MoCo vs MoCo + Un-Mix on Fashion-MNIST'.(tag ne '' ? ' ['.tag.']' : '')
  do for [col in "loss knn_top1 knn_top5"] {
    set title (col eq 'loss' ? 'training loss' : (col eq 'knn_top1' ? 'kNN top-1 on the test set' : 'kNN top-5 on the test set'))
    set ylabel (col eq 'loss' ? 'Loss' : 'kNN Acc. (%)')
    set key outside bottom center horizontal noopaque
    set bmargin 8
    refs = ''
    if (hbase && col ne 'loss') {
      bc = (col eq 'knn_top1' ? 'top1' : 'top5')
      px = bval('raw-pixels', bc); un = bval('untrained', bc)
      refs = sprintf(", %g with lines ls 3 title 'raw pixels (%.1f)', %g with lines ls 4 title 'untrained net (%.1f)'", px, px, un, un)
    }
    if (ha && hb) {
      eval("plot moco using 'epoch':col with linespoints ls 1 title 'MoCo', unmix using 'epoch':col with linespoints ls 2 title '+ Un-Mix'".refs)
    } else { if (ha) { eval("plot moco using 'epoch':col with linespoints ls 1 title 'MoCo (+ Un-Mix: not run)'".refs)
    } else { if (hb) { eval("plot unmix using 'epoch':col with linespoints ls 2 title '+ Un-Mix (MoCo: not run)'".refs)
    } else { set label 1 'no run yet' at graph 0.5,0.5 center; set key off; plot [0:1][0:1] NaN notitle; set key on; unset label 1 } } }
  }
  unset multiplot
  set output
}
