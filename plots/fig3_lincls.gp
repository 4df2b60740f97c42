# Figure 3: linear-evaluation top-1 and top-5 (%) vs epoch, MoCo v2 vs MoCo v2 + Un-Mix (ImageNet,
# 200 pre-training epochs), from each run's lincls.csv (columns epoch, test_top1, test_top5).
#   gnuplot -e "runs='results/runs'; out='results/figures/fig3_lincls'" plots/fig3_lincls.gp
# Inputs: moco, unmix (lincls.csv paths; default runs/imagenet_mocov2[_unmix]_200/lincls.csv),
# tag (a title note, e.g. "SMOKE RUN"). A missing run is left out. Writes out.png and out.svg.
if (!exists("runs")) runs = 'results/runs'
if (!exists("out")) out = 'results/figures/fig3_lincls'
if (!exists("moco")) moco = runs.'/imagenet_mocov2_200/lincls.csv'
if (!exists("unmix")) unmix = runs.'/imagenet_mocov2_unmix_200/lincls.csv'
if (!exists("tag")) tag = ''
readable(f) = int(system("test -r '".f."' && echo 1 || echo 0"))
# integer epoch tics when there are few epochs (the epoch is the first column)
lastep(f) = readable(f) ? int(system("awk -F, 'NR>1 && $1!=\"\" {n=$1} END{print n+0}' '".f."'")) : 0
ep = 0; ep = (lastep(moco) > ep ? lastep(moco) : ep); ep = (lastep(unmix) > ep ? lastep(unmix) : ep);
if (ep > 0 && ep <= 12) { set xtics 1 }
if (ep == 1) { set xrange [0.5:1.5] }
set datafile separator comma
set grid
set key bottom right box opaque
set xlabel 'Epoch'
set style line 1 lc rgb '#3b6ea5' lw 2 pt 7 ps 0.6
set style line 2 lc rgb '#e07b39' lw 2 pt 5 ps 0.6
ha = readable(moco); hb = readable(unmix)
do for [fmt in "png svg"] {
  if (fmt eq "png") { set terminal pngcairo size 1300,500 font 'sans,11'; set output out.'.png' } \
  else { set terminal svg size 1300,500 font 'sans,11' dynamic; set output out.'.svg' }
  set multiplot layout 1,2 title 'Linear evaluation: MoCo v2 vs MoCo v2 + Un-Mix'.(tag ne '' ? ' ['.tag.']' : '')
  do for [col in "test_top1 test_top5"] {
    set ylabel (col eq 'test_top1' ? 'Acc. (Top-1, %)' : 'Acc. (Top-5, %)')
    set title (col eq 'test_top1' ? 'Top-1' : 'Top-5')
    if (ha && hb) {
      plot moco using 'epoch':col with linespoints ls 1 title 'MoCo v2', \
           unmix using 'epoch':col with linespoints ls 2 title '+ Un-Mix'
    } else { if (ha) {
      plot moco using 'epoch':col with linespoints ls 1 title 'MoCo v2 (+ Un-Mix: not run)'
    } else { if (hb) {
      plot unmix using 'epoch':col with linespoints ls 2 title '+ Un-Mix (MoCo v2: not run)'
    } else {
      set label 1 'no linear evaluation yet' at graph 0.5, 0.5 center
      set key off; plot [0:1][0:1] NaN notitle; set key on
      unset label 1
    } } }
  }
  unset multiplot
  set output
}
