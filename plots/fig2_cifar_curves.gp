# Figure 2: training loss and kNN top-1 vs epoch of MoCo, SimCLR and BYOL, each with and without
# Un-Mix, on CIFAR-10 and CIFAR-100, from the runs' metrics.csv (columns epoch, loss, knn_top1).
# Rows: the three methods; columns: CIFAR-10 loss, kNN, CIFAR-100 loss, kNN. MoCo symmetric is
# drawn solid and asymmetric dashed; + Un-Mix in orange. A missing run is left out of its panel
# (a panel with no run says so). The loss panels plot loss_main, the method's loss of the two
# original views, which every run has: the Un-Mix total adds the two mixture terms and would not
# be comparable with the plain run's (symmetric MoCo sums both directions: compare symmetric
# with symmetric, asymmetric with asymmetric).
#   gnuplot -e "runs='results/runs'; out='results/figures/fig2_cifar_curves'" plots/fig2_cifar_curves.gp
# Inputs: runs (the directory of <cifar10|cifar100>_<row>/metrics.csv), out, tag (a note for
# the title, e.g. "SMOKE RUN"). Writes out.png (pngcairo) and out.svg.
if (!exists("runs")) runs = 'results/runs'
if (!exists("out")) out = 'results/figures/fig2_cifar_curves'
if (!exists("tag")) tag = ''
readable(f) = int(system("test -r '".f."' && echo 1 || echo 0"))
lastep(f) = readable(f) ? int(system("awk -F, 'NR>1 && $1!=\"\" {n=$1} END{print n+0}' '".f."'")) : 0
# 1 when column c of f has a value in some row: a run stopped before its first kNN evaluation
# (knn.every > 1) has an empty knn_top1 column, which gnuplot cannot plot (it aborts the figure)
hasval(f, c) = readable(f) ? int(system("awk -F, -v c='".c."' 'NR==1{for(i=1;i<=NF;i++) if($i==c) k=i; next} k && $k!=\"\" {n++} END{print (n>0)}' '".f."'")) : 0
array meth[3] = ['MoCo', 'SimCLR', 'BYOL']
array dsn[2] = ['cifar10', 'cifar100']
array dsl[2] = ['CIFAR-10', 'CIFAR-100']
# four variants per method (row stem, legend); '' = none
array stems[12] = ['moco_sym', 'moco_sym_unmix', 'moco_asym', 'moco_asym_unmix', \
                   'simclr', 'simclr_unmix', '', '', 'byol', 'byol_unmix', '', '']
array legend[12] = ['symmetric', 'symmetric + Un-Mix', 'asymmetric', 'asymmetric + Un-Mix', \
                    'SimCLR', 'SimCLR + Un-Mix', '', '', 'BYOL', 'BYOL + Un-Mix', '', '']
file(m, d, v) = runs.'/'.dsn[d].'_'.stems[4*(m-1)+v].'/metrics.csv'
# integer epoch tics when there are few epochs (the epoch is the first column)
ep = 0
do for [m=1:3] { do for [d=1:2] { do for [v=1:4] { if (stems[4*(m-1)+v] ne '') { e = lastep(file(m, d, v)); ep = (e > ep ? e : ep) } } } }
if (ep > 0 && ep <= 12) { set xtics 1 }
if (ep == 1) { set xrange [0.5:1.5] }
if (ep > 1) { set xrange [1:ep] }   # one epoch axis for every panel (a kNN every E epochs starts late)
set datafile separator comma
set grid
set xlabel 'Epoch'
set style line 1 lc rgb '#3b6ea5' lw 2 pt 7 ps 0.5
set style line 2 lc rgb '#e07b39' lw 2 pt 5 ps 0.5
set style line 3 lc rgb '#3b6ea5' lw 2 pt 6 ps 0.5 dt 2
set style line 4 lc rgb '#e07b39' lw 2 pt 4 ps 0.5 dt 2
do for [fmt in "png svg"] {
  if (fmt eq "png") { set terminal pngcairo size 2000,1400 font 'sans,10'; set output out.'.png' } \
  else { set terminal svg size 2000,1400 font 'sans,10' dynamic; set output out.'.svg' }
  set multiplot layout 3,4 title 'MoCo, SimCLR and BYOL vs + Un-Mix on CIFAR: training loss and kNN top-1'.(tag ne '' ? ' ['.tag.']' : '')
  do for [m=1:3] {
    do for [d=1:2] {
      do for [panel in "loss_main knn_top1"] {
        set title meth[m].', '.dsl[d].(panel eq 'loss_main' ? ': training loss (original views)' : ': kNN top-1 (%)')
        set ylabel (panel eq 'loss_main' ? 'Loss' : 'kNN Acc. (%)')
        if (panel eq 'loss_main') { set key top right box opaque } else { set key bottom right box opaque }
        cmd = ''
        nruns = 0
        do for [v=1:4] { if (stems[4*(m-1)+v] ne '') { nruns = nruns + readable(file(m, d, v)) } }
        do for [v=1:4] {
          if (stems[4*(m-1)+v] ne '') {
            f = file(m, d, v)
            if (hasval(f, panel)) {
              cmd = cmd.(cmd eq '' ? '' : ', ')."'".f."' using 'epoch':'".panel."' with linespoints ls ".v." title '".legend[4*(m-1)+v]."'"
            }
          }
        }
        if (cmd eq '') {
          set label 1 (nruns > 0 ? 'no '.(panel eq 'loss_main' ? 'loss' : 'kNN evaluation').' yet' : 'no run yet') at graph 0.5, 0.5 center
          set key off; plot [0:1][0:1] NaN notitle; set key on
          unset label 1
        } else {
          eval('plot '.cmd)
        }
      }
    }
  }
  unset multiplot
  set output
}
