# Grouped bar chart for docs/BENCHMARKS.md, called by bench/run.sh:
#   gnuplot -e "dat='file'; out='x.png'; ttl='title'; yl='y label'; logy=1; ref=0" bench/plot.gp
# dat: tab-separated, a header row (scenario, then one column per server),
# then one row per scenario; "-" marks a figure that was not measured.
# ref > 0 draws a horizontal line at that value (e.g. the floor = 1).
set terminal pngcairo size 1100,520 font "sans,10" noenhanced
set output out
set datafile separator "\t"
set datafile missing "-"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top right outside vertical
set title ttl
set ylabel yl
set grid ytics
set xtics rotate by -25 scale 0
set bmargin 6
if (logy) { set logscale y; set format y "%.0s%c" } else { set yrange [0:*] }
ncol = system("head -1 '".dat."' | awk -F'\t' '{print NF}'") + 0
if (ref > 0) {
    set arrow 1 from graph 0, first ref to graph 1, first ref nohead dt 2 lw 1.5 lc rgb "#444444" front
}
plot for [i=2:ncol] dat using i:xtic(1) title columnhead(i)
