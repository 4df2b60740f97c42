# Figure 4: t-SNE of the test features, MoCo (left) vs MoCo + Un-Mix (right), points coloured by
# class (ten classes), from tsne.csv files (columns x, y, label, class).
#   gnuplot -e "moco='A/tsne.csv'; unmix='B/tsne.csv'; out='results/figures/fig4_tsne'" plots/fig4_tsne.gp
# Inputs: moco, unmix (default runs/cifar10_moco_sym[_unmix]/tsne.csv), titles left_title /
# right_title, dataset (in the title; default CIFAR-10), tag (a title note). A missing file leaves
# its panel empty with a note. Both panels have the same size (the class key sits below them).
if (!exists("runs")) runs = 'results/runs'
if (!exists("out")) out = 'results/figures/fig4_tsne'
if (!exists("moco")) moco = runs.'/cifar10_moco_sym/tsne.csv'
if (!exists("unmix")) unmix = runs.'/cifar10_moco_sym_unmix/tsne.csv'
if (!exists("left_title")) left_title = 'MoCo'
if (!exists("right_title")) right_title = 'MoCo + Un-Mix'
if (!exists("tag")) tag = ''
if (!exists("dataset")) dataset = 'CIFAR-10'
readable(f) = int(system("test -r '".f."' && echo 1 || echo 0"))
# the class name of label k, read from the CSV (the first row with that label)
cname(f, k) = system(sprintf("awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i==\"class\") c=i; for(i=1;i<=NF;i++) if($i==\"label\") l=i; next} c && $l==%d {print $c; exit}' '%s'", k, f))
set datafile separator comma
unset xtics; unset ytics; unset border
set size square
# ten categorical colours that stay distinguishable (Tableau 10); a sequential map (viridis)
# makes neighbouring classes look alike
array pal[10] = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac']
array files[2] = [moco, unmix]
array titles[2] = [left_title, right_title]
do for [fmt in "png svg"] {
  if (fmt eq "png") { set terminal pngcairo noenhanced size 1400,800 font 'sans,11'; set output out.'.png' } \
  else { set terminal svg noenhanced size 1400,800 font 'sans,11' dynamic; set output out.'.svg' }
  set multiplot layout 1,2 title 't-SNE of the '.dataset.' test features'.(tag ne '' ? ' ['.tag.']' : '')
  do for [p=1:2] {
    f = files[p]
    set title titles[p]
    if (readable(f)) {
      set key outside bottom center horizontal maxrows 2 samplen 1 width -2
      plot for [k=0:9] f using (column('label') == k ? column('x') : NaN):'y' with points pt 7 ps 0.8 \
           lc rgb pal[k+1] title sprintf('%d %s', k, cname(f, k))
    } else {
      unset key
      set label 1 'not run' at graph 0.5, 0.5 center
      set key off; plot [0:1][0:1] NaN notitle; set key on
      unset label 1
    }
  }
  unset multiplot
  set output
}
