/* plot.h - line plots as PNG files with cairo: axes, "nice" ticks (1-2-5 steps), tick
 * labels, axis titles, an optional title, a legend, a fixed qualitative palette (tab10),
 * anti-aliased lines, linear or logarithmic y. Nothing here prints. */
#ifndef EG_PLOT_H
#define EG_PLOT_H

#include "common.h"

#define EG_PLOT_DEFAULT_WIDTH 900
#define EG_PLOT_DEFAULT_HEIGHT 560
#define EG_PLOT_MIN_SIZE 200
#define EG_PLOT_MAX_SIZE 8000

/* One curve. Points whose x or y is not finite are skipped (the line joins the points on
 * either side); on a log axis so are points with y <= 0. With lo and hi (both n long), a
 * band between them is shaded under the line in the series' colour (translucent), over
 * the runs of consecutive points where both are drawable. Not owned by the plot. */
typedef struct eg_series {
    const char *label; /* legend text; NULL or "" leaves the series out of the legend */
    const double *x, *y;
    long n;
    const double *lo, *hi; /* NULL: no band */
} eg_series;

typedef struct eg_plot_opts {
    int width, height;  /* pixels (default 900 x 560) */
    int log_y;          /* 1: logarithmic y axis with decade ticks */
    const char *title;  /* NULL: no title */
    const char *xlabel; /* axis titles; NULL: none */
    const char *ylabel;
} eg_plot_opts;

/* Fills o with the defaults (900 x 560, linear, no titles). */
void eg_plot_opts_init(eg_plot_opts *o);

/* Draws the series into a PNG at path (written to path.tmp, then renamed). Series with no
 * drawable point still get a legend entry, marked "(no data)". With no drawable point in
 * any series the axes span [0, 1]. Errors: a size outside [EG_PLOT_MIN_SIZE,
 * EG_PLOT_MAX_SIZE] (EG_EINPUT); cairo or file failures (EG_ERUN naming path). */
int eg_plot_png(const char *path, const eg_series *s, int ns, const eg_plot_opts *o,
                eg_err *err);

/* Nice linear ticks: the multiples of step in [lo, hi], where step is the smallest
 * 1, 2 or 5 x 10^k for which [floor(lo/step), ceil(hi/step)] holds at most max_intervals
 * steps. Writes at most cap ticks to ticks[], sets *step, returns the count (>= 0).
 * lo < hi required (else returns 0). */
int eg_plot_nice_ticks(double lo, double hi, int max_intervals, double *ticks, int cap,
                       double *step);

/* Log ticks for [lo, hi] (0 < lo < hi). With fewer than three powers of ten inside, the
 * 1-2-5 multiples of powers of ten inside when they number 2..max_labels+1; else the
 * powers of ten inside, every m-th decade so that at most max_labels are returned; else
 * the 1..9 multiples. Returns the count and sets *decades_only to 1 when the ticks are
 * powers of ten. Returns 0 when even the 1..9 multiples give fewer than two ticks (the
 * caller then uses linear ticks). */
int eg_plot_log_ticks(double lo, double hi, int max_labels, double *ticks, int cap,
                      int *decades_only);

/* Formats a linear tick value given the tick step: as many decimals as the step needs
 * ("0.25", "1500"), or compact scientific ("2.5e-6", "1.2e9") for very small or very
 * large magnitudes. */
void eg_plot_format_tick(double v, double step, char *out, size_t len);

#endif
