# Figure 2 (MoCo row): training loss and kNN top-1 vs epoch on CIFAR-10 and CIFAR-100, every
# trained method of the CIFAR table from its metrics.csv (columns epoch, loss_main, knn_top1).
# The loss panel plots loss_main, the contrastive loss of the two views, which every run has:
# the Un-Mix total adds the two mixture terms and is not comparable with plain MoCo's (symmetric
# runs sum both directions: compare symmetric with symmetric, asymmetric with asymmetric).
# Symmetric MoCo is drawn solid, asymmetric dashed; Un-Mix in orange, without in blue. The runs
# are data: `rows` lists the run-name suffixes (runs/<cifar10|cifar100>_<row>/metrics.csv); rows
# without a run are left out (a panel with no run says so).
#   gnuplot -e "runs='results/runs'; out='results/figures/fig2_cifar_curves'" plots/fig2_cifar_curves.gp
# Inputs: runs, out, rows (default "moco_sym moco_sym_unmix moco_asym moco_asym_unmix"; other
# methods' rows, e.g. "simclr simclr_unmix", get the next colours), loss (default loss_main),
# tag: a note for the title (e.g. "SMOKE RUN"). Writes out.png (pngcairo) and out.svg.
if (!exists("runs")) runs = 'results/runs'
if (!exists("out")) out = 'results/figures/fig2_cifar_curves'
if (!exists("rows")) rows = 'moco_sym moco_sym_unmix moco_asym moco_asym_unmix'
if (!exists("loss")) loss = 'loss_main'
if (!exists("tag")) tag = ''
readable(f) = int(system("test -r '".f."' && echo 1 || echo 0"))
file(ds, r) = runs.'/'.ds.'_'.r.'/metrics.csv'
# "moco_sym_unmix" -> "MoCo sym + Un-Mix"
rowlabel(r) = system("echo '".r."' | sed -e 's/^moco_sym/MoCo symmetric/; s/^moco_asym/MoCo asymmetric/; s/^simclr/SimCLR/; s/^byol/BYOL/; s/_unmix$/ + Un-Mix/'")
is_unmix(r) = strstrt(r, 'unmix') > 0
is_asym(r) = strstrt(r, 'asym') > 0
# colour: blue / orange for the MoCo rows; other methods take green / purple, then grey
colour(r) = (strstrt(r, 'moco') == 1 ? (is_unmix(r) ? '#e07b39' : '#3b6ea5') : \
             (strstrt(r, 'simclr') == 1 ? (is_unmix(r) ? '#b07aa1' : '#59a14f') : (is_unmix(r) ? '#9c755f' : '#76b7b2')))
lastep(f) = readable(f) ? int(system("awk -F, 'NR>1 && $1!=\"\" {n=$1} END{print n+0}' '".f."'")) : 0
ep = 0
do for [ds in "cifar10 cifar100"] { do for [r in rows] { e = lastep(file(ds, r)); ep = (e > ep ? e : ep) } }
if (ep > 0 && ep <= 12) { set xtics 1 }
if (ep == 1) { set xrange [0.5:1.5] }
set datafile separator comma
set grid
set key box opaque noenhanced
set xlabel 'Epoch'
array dsets[2] = ['cifar10', 'cifar100']
array names[2] = ['CIFAR-10', 'CIFAR-100']
do for [fmt in "png svg"] {
  if (fmt eq "png") { set terminal pngcairo noenhanced size 1400,900 font 'sans,11'; set output out.'.png' } \
  else { set terminal svg noenhanced size 1400,900 font 'sans,11' dynamic; set output out.'.svg' }
  set multiplot layout 2,2 title 'MoCo vs MoCo + Un-Mix on CIFAR: contrastive loss and kNN top-1'.(tag ne '' ? ' ['.tag.']' : '')
  do for [d=1:2] {
    ds = dsets[d]
    have = ''
    do for [r in rows] { if (readable(file(ds, r))) { have = have.' '.r } }
    do for [panel in "loss knn_top1"] {
      col = (panel eq 'loss' ? loss : 'knn_top1')
      set title names[d].(panel eq 'loss' ? ': training loss ('.loss.')' : ': kNN top-1 (%)')
      set ylabel (panel eq 'loss' ? 'Loss' : 'kNN Acc. (%)')
      if (panel eq 'loss') { set key top right } else { set key bottom right }
      if (have ne '') {
        plot for [r in have] file(ds, r) using 'epoch':col with linespoints lw 2 pt (is_unmix(r) ? 5 : 7) ps 0.6 \
             dt 1+is_asym(r) lc rgb colour(r) title rowlabel(r)
      } else {
        set label 1 'no run yet' at graph 0.5, 0.5 center
        set key off; plot [0:1][0:1] NaN notitle; set key on
        unset label 1
      }
    }
  }
  unset multiplot
  set output
}
