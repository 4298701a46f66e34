/* plot.c - line plots as PNG files with cairo (see plot.h).
 *
 * Layout: the figure is measured before anything is drawn. Font sizes scale with the
 * figure (13 px labels at 900 x 560). Margins are sized from the widest tick label and
 * the axis titles; the legend sits inside the plot area in the corner that covers the
 * fewest data points; when it is too big for that, on the right of the plot (a narrow
 * legend) or below it (a wide one). */
#include "plot.h"

#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FONT "DejaVu Sans"
#define MAX_TICKS 64
#define PI 3.14159265358979323846

/* tab10, the matplotlib default qualitative palette */
static const double PALETTE[10][3] = {
    {0x1f / 255.0, 0x77 / 255.0, 0xb4 / 255.0}, {0xff / 255.0, 0x7f / 255.0, 0x0e / 255.0},
    {0x2c / 255.0, 0xa0 / 255.0, 0x2c / 255.0}, {0xd6 / 255.0, 0x27 / 255.0, 0x28 / 255.0},
    {0x94 / 255.0, 0x67 / 255.0, 0xbd / 255.0}, {0x8c / 255.0, 0x56 / 255.0, 0x4b / 255.0},
    {0xe3 / 255.0, 0x77 / 255.0, 0xc2 / 255.0}, {0x7f / 255.0, 0x7f / 255.0, 0x7f / 255.0},
    {0xbc / 255.0, 0xbd / 255.0, 0x22 / 255.0}, {0x17 / 255.0, 0xbe / 255.0, 0xcf / 255.0},
};

void eg_plot_opts_init(eg_plot_opts *o)
{
    memset(o, 0, sizeof *o);
    o->width = EG_PLOT_DEFAULT_WIDTH;
    o->height = EG_PLOT_DEFAULT_HEIGHT;
}

/* ---- ticks ---------------------------------------------------------------------- */

int eg_plot_nice_ticks(double lo, double hi, int max_intervals, double *ticks, int cap,
                       double *step)
{
    if (!(lo < hi) || !isfinite(lo) || !isfinite(hi) || cap <= 0)
        return 0;
    if (max_intervals < 1)
        max_intervals = 1;
    double e = floor(log10((hi - lo) / max_intervals)) - 1;
    double st = 0;
    for (int guard = 0; guard < 40 && st == 0; guard++, e += 1) {
        static const double M[3] = {1, 2, 5};
        for (int i = 0; i < 3; i++) {
            double s = M[i] * pow(10, e);
            double a = floor(lo / s + 1e-9), b = ceil(hi / s - 1e-9);
            if (b - a <= max_intervals) {
                st = s;
                break;
            }
        }
    }
    if (st == 0)
        return 0;
    *step = st;
    int n = 0;
    double a = ceil(lo / st - 1e-9), b = floor(hi / st + 1e-9);
    for (double k = a; k <= b && n < cap; k += 1) {
        double v = k * st;
        if (fabs(v) < st * 1e-9)
            v = 0;
        ticks[n++] = v;
    }
    return n;
}

/* the multiples m x 10^k (m from mult[]) inside [lo, hi] */
static int log_multiples(double lo, double hi, const double *mult, int nmult, double *ticks,
                         int cap)
{
    int n = 0;
    for (int k = (int)floor(log10(lo)) - 1; k <= (int)ceil(log10(hi)); k++)
        for (int j = 0; j < nmult; j++) {
            double v = mult[j] * pow(10, k);
            if (v >= lo * (1 - 1e-12) && v <= hi * (1 + 1e-12) && n < cap)
                ticks[n++] = v;
        }
    return n;
}

int eg_plot_log_ticks(double lo, double hi, int max_labels, double *ticks, int cap,
                      int *decades_only)
{
    *decades_only = 0;
    if (!(lo > 0) || !(lo < hi) || !isfinite(hi) || cap <= 0)
        return 0;
    if (max_labels < 2)
        max_labels = 2;
    int k0 = (int)ceil(log10(lo) - 1e-9), k1 = (int)floor(log10(hi) + 1e-9);
    int ndec = k1 - k0 + 1;
    static const double S125[] = {1, 2, 5}, S19[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    /* two decades or fewer: 1-2-5 labels read better, when they are not too many */
    if (ndec < 3) {
        int n = log_multiples(lo, hi, S125, 3, ticks, cap);
        if (n >= 2 && n <= max_labels + 1)
            return n;
    }
    if (ndec >= 2) {
        int every = 1;
        while ((k1 - k0) / every + 1 > max_labels)
            every++;
        int n = 0;
        /* multiples of `every`, so the labelled decades do not depend on the range */
        int start = k0;
        while (((start % every) + every) % every)
            start++;
        for (int k = start; k <= k1 && n < cap; k += every)
            ticks[n++] = pow(10, k);
        if (n >= 2) {
            *decades_only = 1;
            return n;
        }
    }
    int n = log_multiples(lo, hi, S19, 9, ticks, cap);
    return n >= 2 ? n : 0;
}

/* "2.5e-6": compact scientific with the decimals the step needs at that magnitude */
static void format_sci(double v, double step, char *out, size_t len)
{
    if (v == 0) {
        snprintf(out, len, "0");
        return;
    }
    int e = (int)floor(log10(fabs(v)) + 1e-9);
    double m = v / pow(10, e);
    int d = (int)(-floor(log10(step / pow(10, e)) + 1e-9));
    if (d < 0)
        d = 0;
    if (d > 6)
        d = 6;
    char mb[32];
    snprintf(mb, sizeof mb, "%.*f", d, m);
    if (!strcmp(mb, "10") || !strcmp(mb, "-10")) { /* rounding carried over */
        e++;
        snprintf(mb, sizeof mb, "%.*f", d, m / 10);
    }
    snprintf(out, len, "%se%d", mb, e);
}

void eg_plot_format_tick(double v, double step, char *out, size_t len)
{
    if (fabs(v) < fabs(step) * 1e-9)
        v = 0;
    step = fabs(step);
    if (step > 0 && (step < 1e-4 || fabs(v) >= 1e6 || step >= 1e6)) {
        format_sci(v, step, out, len);
        return;
    }
    int d = step > 0 ? (int)(-floor(log10(step) + 1e-9)) : 0;
    if (d < 0)
        d = 0;
    snprintf(out, len, "%.*f", d, v);
}

/* ---- drawing helpers ------------------------------------------------------------ */

typedef struct fig {
    cairo_t *cr;
    double s;                    /* scale factor */
    double fs_tick, fs_label, fs_title, fs_legend;
    double px0, px1, py0, py1;   /* plot rectangle in pixels (py0 top) */
    double x0, x1, y0, y1;       /* data limits (y in log10 when log_y) */
    int log_y;
} fig;

static void set_font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_w(cairo_t *cr, const char *t)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, t, &e);
    return e.x_advance;
}

/* Draws t with its anchor at (x, y): ha 0 left / 0.5 centre / 1 right; va is the
 * vertical centre when vcenter, else the baseline. */
static void text_at(cairo_t *cr, double x, double y, const char *t, double ha, int vcenter)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, t, &e);
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double bx = x - ha * e.x_advance;
    double by = vcenter ? y + (fe.ascent - fe.descent) / 2 : y;
    cairo_move_to(cr, bx, by);
    cairo_show_text(cr, t);
}

/* 10^k as "10" with a raised exponent (a true minus sign); returns the width, and draws
 * it when draw is set, anchored like text_at with vcenter. */
static double pow10_label(cairo_t *cr, double size, int k, double x, double y, double ha,
                          int draw)
{
    char ex[16];
    if (k < 0)
        snprintf(ex, sizeof ex, "\xE2\x88\x92%d", -k); /* U+2212 MINUS SIGN */
    else
        snprintf(ex, sizeof ex, "%d", k);
    cairo_set_font_size(cr, size);
    double wb = text_w(cr, "10");
    cairo_set_font_size(cr, size * 0.72);
    double we = text_w(cr, ex);
    double w = wb + we + size * 0.05;
    if (draw) {
        cairo_font_extents_t fe;
        cairo_set_font_size(cr, size);
        cairo_font_extents(cr, &fe);
        double bx = x - ha * w, by = y + (fe.ascent - fe.descent) / 2;
        cairo_move_to(cr, bx, by);
        cairo_show_text(cr, "10");
        cairo_set_font_size(cr, size * 0.72);
        cairo_move_to(cr, bx + wb + size * 0.05, by - size * 0.42);
        cairo_show_text(cr, ex);
        cairo_set_font_size(cr, size);
    }
    return w;
}

static double map_x(const fig *f, double x)
{
    return f->px0 + (x - f->x0) / (f->x1 - f->x0) * (f->px1 - f->px0);
}

static double map_y(const fig *f, double y)
{
    double v = f->log_y ? log10(y) : y;
    return f->py1 - (v - f->y0) / (f->y1 - f->y0) * (f->py1 - f->py0);
}

static int drawable(const fig *f, double x, double y)
{
    return isfinite(x) && isfinite(y) && (!f->log_y || y > 0);
}

/* y tick set: values, labels (or decade exponents), and minor ticks */
typedef struct ticks {
    int n;
    double v[MAX_TICKS];
    char lab[MAX_TICKS][32];
    int pow10;     /* labels are 10^k, exponent in k[] */
    int k[MAX_TICKS];
    int nminor;
    double minor[MAX_TICKS * 2];
} ticks;

static void linear_ticks(ticks *t, double lo, double hi, int maxint)
{
    double step = 0;
    t->n = eg_plot_nice_ticks(lo, hi, maxint, t->v, MAX_TICKS, &step);
    for (int i = 0; i < t->n; i++)
        eg_plot_format_tick(t->v[i], step, t->lab[i], sizeof t->lab[i]);
}

/* log axis with limits 10^lo .. 10^hi (lo, hi in log10) */
static void log_ticks(ticks *t, double lo, double hi, int maxlab)
{
    double a = pow(10, lo), b = pow(10, hi);
    int dec = 0;
    t->n = eg_plot_log_ticks(a, b, maxlab, t->v, MAX_TICKS, &dec);
    if (t->n == 0) { /* narrower than one 1..9 step: linear values on the log axis */
        linear_ticks(t, a, b, maxlab);
        return;
    }
    if (dec) {
        t->pow10 = 1;
        for (int i = 0; i < t->n; i++)
            t->k[i] = (int)lround(log10(t->v[i]));
        /* unlabelled minor ticks at 2..9 x 10^k when the decades are few */
        if (hi - lo <= 8)
            for (int k = (int)floor(lo); k <= (int)ceil(hi); k++)
                for (int j = 2; j <= 9 && t->nminor < MAX_TICKS * 2; j++) {
                    double v = j * pow(10, k);
                    if (v > a && v < b)
                        t->minor[t->nminor++] = v;
                }
        return;
    }
    for (int i = 0; i < t->n; i++)
        eg_plot_format_tick(t->v[i], t->v[i], t->lab[i], sizeof t->lab[i]);
    /* unlabelled minor ticks at the other integer multiples */
    for (int k = (int)floor(lo) - 1; k <= (int)ceil(hi); k++)
        for (int j = 1; j <= 9 && t->nminor < MAX_TICKS * 2; j++) {
            double v = j * pow(10, k);
            int labelled = 0;
            for (int i = 0; i < t->n && !labelled; i++)
                labelled = fabs(t->v[i] - v) <= 1e-9 * v;
            if (!labelled && v > a && v < b)
                t->minor[t->nminor++] = v;
        }
}

static double tick_label_w(cairo_t *cr, const ticks *t, int i, double size)
{
    if (t->pow10)
        return pow10_label(cr, size, t->k[i], 0, 0, 0, 0);
    cairo_set_font_size(cr, size);
    return text_w(cr, t->lab[i]);
}

/* ---- the figure ----------------------------------------------------------------- */

enum { LEG_INSIDE, LEG_RIGHT, LEG_BELOW };

typedef struct legend {
    int n;
    int *idx;     /* series index of each entry */
    char **text;  /* entry text (owned) */
    double w, h, row, sample, pad;
    int place;    /* LEG_INSIDE / LEG_RIGHT / LEG_BELOW */
    double x, y;  /* top-left */
} legend;

static void legend_free(legend *L)
{
    if (L->text)
        for (int i = 0; i < L->n; i++)
            free(L->text[i]);
    free(L->text);
    free(L->idx);
}

static void set_series_style(cairo_t *cr, int i, double s)
{
    const double *c = PALETTE[i % 10];
    cairo_set_source_rgb(cr, c[0], c[1], c[2]);
    cairo_set_line_width(cr, 1.8 * s);
    int cycle = (i / 10) % 3;
    if (cycle == 1) {
        double d[2] = {7 * s, 4 * s};
        cairo_set_dash(cr, d, 2, 0);
    } else if (cycle == 2) {
        double d[4] = {2 * s, 3 * s, 7 * s, 3 * s};
        cairo_set_dash(cr, d, 4, 0);
    } else {
        cairo_set_dash(cr, NULL, 0, 0);
    }
}

/* how many (interpolated) points of the curve (x, y) fall inside rectangle r */
static long covered_curve(const fig *f, const double *x, const double *y, long n, double rx,
                          double ry, double rw, double rh)
{
    long c = 0;
    double lx = NAN, ly = NAN;
    for (long j = 0; j < n; j++) {
        if (!drawable(f, x[j], y[j]))
            continue;
        double X = map_x(f, x[j]), Y = map_y(f, y[j]);
        int steps = isnan(lx) ? 1 : 8;
        for (int t = 1; t <= steps; t++) {
            double u = (double)t / steps;
            double px = isnan(lx) ? X : lx + (X - lx) * u, py = isnan(ly) ? Y : ly + (Y - ly) * u;
            if (px >= rx && px <= rx + rw && py >= ry && py <= ry + rh)
                c++;
        }
        lx = X;
        ly = Y;
    }
    return c;
}

/* how many data points (lines, and the edges of bands) fall inside rectangle r */
static long covered(const fig *f, const eg_series *s, int ns, double rx, double ry, double rw,
                    double rh)
{
    long c = 0;
    for (int i = 0; i < ns; i++) {
        c += covered_curve(f, s[i].x, s[i].y, s[i].n, rx, ry, rw, rh);
        if (s[i].lo && s[i].hi)
            c += covered_curve(f, s[i].x, s[i].lo, s[i].n, rx, ry, rw, rh) +
                 covered_curve(f, s[i].x, s[i].hi, s[i].n, rx, ry, rw, rh);
    }
    return c;
}

/* the plot area's layout: margins and the sizes they are made of */
typedef struct layout {
    double tick_len, gap, tick_h, label_h;
    double top, bottom, left, right;
    double xaxis_h; /* tick labels and x title below the frame */
} layout;

/* scale and font sizes for a W x H figure */
static void fig_scale(fig *f, int W, int H, int log_y)
{
    memset(f, 0, sizeof *f);
    f->log_y = log_y;
    double sw = W / 900.0, sh = H / 560.0;
    f->s = sw < sh ? sw : sh;
    if (f->s < 0.6)
        f->s = 0.6;
    f->fs_tick = 12.5 * f->s;
    f->fs_label = 14 * f->s;
    f->fs_title = 16 * f->s;
    f->fs_legend = 12.5 * f->s;
}

/* data limits with margins; [0, 1] when nothing is drawable */
static void data_limits(fig *f, const eg_series *s, int ns)
{
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int i = 0; i < ns; i++)
        for (long j = 0; j < s[i].n; j++)
            for (int b = 0; b < 3; b++) { /* the point, then its band's ends */
                const double *ys = b == 0 ? s[i].y : b == 1 ? s[i].lo : s[i].hi;
                if (!ys || !drawable(f, s[i].x[j], ys[j]))
                    continue;
                double x = s[i].x[j], y = f->log_y ? log10(ys[j]) : ys[j];
                xmin = fmin(xmin, x);
                xmax = fmax(xmax, x);
                ymin = fmin(ymin, y);
                ymax = fmax(ymax, y);
            }
    if (!(xmin <= xmax)) {
        xmin = 0;
        xmax = 1;
        ymin = 0;
        ymax = 1;
    }
    if (xmin == xmax) {
        double d = xmin ? fabs(xmin) * 0.1 : 0.5;
        xmin -= d;
        xmax += d;
    }
    if (ymin == ymax) {
        double d = f->log_y ? 0.3 : (ymin ? fabs(ymin) * 0.1 : 0.5);
        ymin -= d;
        ymax += d;
    }
    f->x0 = xmin - 0.02 * (xmax - xmin);
    f->x1 = xmax + 0.02 * (xmax - xmin);
    f->y0 = ymin - 0.05 * (ymax - ymin);
    f->y1 = ymax + 0.05 * (ymax - ymin);
    /* a non-negative quantity whose axis would start just below zero starts at zero */
    if (!f->log_y && ymin >= 0 && f->y0 < 0)
        f->y0 = 0;
    if (xmin >= 0 && f->x0 < 0)
        f->x0 = 0;
}

/* the legend's entries ("(no data)" marks a series with no drawable point) and size */
static int legend_measure(const fig *f, const eg_series *s, int ns, legend *L, eg_err *err)
{
    cairo_t *cr = f->cr;
    L->idx = calloc((size_t)(ns ? ns : 1), sizeof(int));
    L->text = calloc((size_t)(ns ? ns : 1), sizeof(char *));
    if (!L->idx || !L->text)
        return eg_err_set(err, EG_ERUN, "out of memory");
    set_font(cr, f->fs_legend, 0);
    L->row = f->fs_legend * 1.45;
    L->sample = 26 * f->s;
    double maxw = 0;
    for (int i = 0; i < ns; i++) {
        if (!s[i].label || !s[i].label[0])
            continue;
        int any = 0;
        for (long j = 0; j < s[i].n && !any; j++)
            any = drawable(f, s[i].x[j], s[i].y[j]);
        size_t l = strlen(s[i].label) + 16;
        char *t = malloc(l);
        if (!t)
            return eg_err_set(err, EG_ERUN, "out of memory");
        snprintf(t, l, "%s%s", s[i].label, any ? "" : " (no data)");
        L->idx[L->n] = i;
        L->text[L->n++] = t;
        maxw = fmax(maxw, text_w(cr, t));
    }
    L->pad = 8 * f->s;
    L->w = L->pad * 2 + L->sample + 8 * f->s + maxw;
    L->h = L->pad * 2 + L->n * L->row - (L->row - f->fs_legend) + 2 * f->s;
    return EG_OK;
}

/* margins from the fonts and the titles, before the legend and the y tick labels */
static void layout_margins(const fig *f, const eg_plot_opts *o, layout *ly)
{
    cairo_t *cr = f->cr;
    cairo_font_extents_t fe;
    ly->tick_len = 5 * f->s;
    ly->gap = 5 * f->s;
    set_font(cr, f->fs_tick, 0);
    cairo_font_extents(cr, &fe);
    ly->tick_h = fe.ascent + fe.descent;
    set_font(cr, f->fs_label, 0);
    cairo_font_extents(cr, &fe);
    ly->label_h = fe.ascent + fe.descent;
    ly->top = (o->title && o->title[0]) ? 16 * f->s + f->fs_title * 1.6 : 18 * f->s;
    ly->bottom = ly->tick_len + ly->gap + ly->tick_h + (o->xlabel ? ly->gap + ly->label_h : 0) +
                 12 * f->s;
    ly->xaxis_h = ly->bottom - 12 * f->s;
    ly->left = 0;
    ly->right = 24 * f->s;
}

/* Places the legend and sets the plot rectangle and the y ticks. Pass 0 lays out without
 * the legend; when the legend does not fit inside the plot, pass 1 makes room for it on
 * the right (narrow legends) or below (wide ones). */
static void layout_plot(fig *f, const eg_plot_opts *o, int W, int H, legend *L, layout *ly,
                        ticks *yt)
{
    cairo_t *cr = f->cr;
    L->place = LEG_INSIDE;
    for (int pass = 0; pass < 2; pass++) {
        f->py0 = ly->top;
        f->py1 = H - ly->bottom;
        memset(yt, 0, sizeof *yt);
        int ymax_int = (int)((f->py1 - f->py0) / (48 * f->s));
        if (ymax_int < 2)
            ymax_int = 2;
        if (f->log_y)
            log_ticks(yt, f->y0, f->y1, ymax_int + 1);
        else
            linear_ticks(yt, f->y0, f->y1, ymax_int);
        double ylab_w = 0;
        for (int i = 0; i < yt->n; i++)
            ylab_w = fmax(ylab_w, tick_label_w(cr, yt, i, f->fs_tick));
        ly->left = 12 * f->s + (o->ylabel ? ly->label_h + ly->gap * 1.5 : 0) + ylab_w +
                   ly->gap + ly->tick_len;
        if (pass == 1 || L->n == 0)
            break;
        double inner_w = W - ly->left - ly->right, inner_h = f->py1 - f->py0;
        if (L->h <= 0.92 * inner_h && L->w <= 0.55 * inner_w)
            break;
        if (L->w + 2 * L->pad + 6 * f->s <= 0.3 * W && L->h <= H - ly->top - 12 * f->s) {
            L->place = LEG_RIGHT;
            ly->right = L->w + 2 * L->pad + 6 * f->s;
            break;
        }
        L->place = LEG_BELOW; /* may clip when huge: the plot keeps at least 35% height */
        double room = H * 0.65 - ly->top - ly->bottom;
        ly->bottom += fmin(L->h + L->pad, room > 0 ? room : 0);
    }
    f->px0 = ly->left;
    f->px1 = W - ly->right;
}

/* x ticks, fewer when their labels would run into each other */
static void x_ticks(const fig *f, ticks *xt)
{
    memset(xt, 0, sizeof *xt);
    int xmax_int = (int)((f->px1 - f->px0) / (90 * f->s));
    if (xmax_int < 2)
        xmax_int = 2;
    linear_ticks(xt, f->x0, f->x1, xmax_int);
    set_font(f->cr, f->fs_tick, 0);
    for (int guard = 0; guard < 8 && xt->n > 1; guard++) {
        double maxlw = 0;
        for (int i = 0; i < xt->n; i++)
            maxlw = fmax(maxlw, text_w(f->cr, xt->lab[i]));
        double spacing = (map_x(f, xt->v[1]) - map_x(f, xt->v[0]));
        if (maxlw + 10 * f->s <= spacing || xmax_int <= 2)
            break;
        xmax_int = xmax_int * 2 / 3 > 2 ? xmax_int * 2 / 3 : 2;
        memset(xt, 0, sizeof *xt);
        linear_ticks(xt, f->x0, f->x1, xmax_int);
    }
}

/* white background and the grid at the major ticks */
static void draw_grid(const fig *f, const ticks *xt, const ticks *yt)
{
    cairo_t *cr = f->cr;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_line_width(cr, 1);
    cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
    for (int i = 0; i < xt->n; i++) {
        double X = floor(map_x(f, xt->v[i])) + 0.5;
        cairo_move_to(cr, X, f->py0);
        cairo_line_to(cr, X, f->py1);
    }
    for (int i = 0; i < yt->n; i++) {
        double Y = floor(map_y(f, yt->v[i])) + 0.5;
        cairo_move_to(cr, f->px0, Y);
        cairo_line_to(cr, f->px1, Y);
    }
    cairo_stroke(cr);
}

/* 1 when point j of s has a drawable band */
static int band_at(const fig *f, const eg_series *s, long j)
{
    return drawable(f, s->x[j], s->lo[j]) && drawable(f, s->x[j], s->hi[j]);
}

/* 1 when s has a band somewhere */
static int has_band(const fig *f, const eg_series *s)
{
    for (long j = 0; s->lo && s->hi && j < s->n; j++)
        if (band_at(f, s, j))
            return 1;
    return 0;
}

/* the bands, translucent in each series' colour: one polygon per run of consecutive
 * points with a band (hi left to right, then lo back) */
static void draw_bands(const fig *f, const eg_series *s, int ns)
{
    cairo_t *cr = f->cr;
    for (int i = 0; i < ns; i++) {
        if (!s[i].lo || !s[i].hi)
            continue;
        const double *c = PALETTE[i % 10];
        cairo_set_source_rgba(cr, c[0], c[1], c[2], 0.22);
        for (long a = 0; a < s[i].n;) {
            if (!band_at(f, &s[i], a)) {
                a++;
                continue;
            }
            long b = a;
            while (b + 1 < s[i].n && band_at(f, &s[i], b + 1))
                b++;
            cairo_move_to(cr, map_x(f, s[i].x[a]), map_y(f, s[i].hi[a]));
            for (long j = a + 1; j <= b; j++)
                cairo_line_to(cr, map_x(f, s[i].x[j]), map_y(f, s[i].hi[j]));
            for (long j = b; j >= a; j--)
                cairo_line_to(cr, map_x(f, s[i].x[j]), map_y(f, s[i].lo[j]));
            cairo_close_path(cr);
            cairo_fill(cr);
            a = b + 1;
        }
    }
}

/* the curves, clipped to the plot area, with markers where the points are few enough to
 * tell apart (a single point always) */
static void draw_curves(const fig *f, const eg_series *s, int ns)
{
    cairo_t *cr = f->cr;
    cairo_save(cr);
    cairo_rectangle(cr, f->px0, f->py0, f->px1 - f->px0, f->py1 - f->py0);
    cairo_clip(cr);
    draw_bands(f, s, ns);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    for (int i = 0; i < ns; i++) {
        set_series_style(cr, i, f->s);
        long npts = 0;
        for (long j = 0; j < s[i].n; j++) {
            if (!drawable(f, s[i].x[j], s[i].y[j]))
                continue;
            double X = map_x(f, s[i].x[j]), Y = map_y(f, s[i].y[j]);
            if (npts++ == 0)
                cairo_move_to(cr, X, Y);
            else
                cairo_line_to(cr, X, Y);
        }
        cairo_stroke(cr);
        if (npts > 0 && npts <= 40) {
            cairo_set_dash(cr, NULL, 0, 0);
            for (long j = 0; j < s[i].n; j++) {
                if (!drawable(f, s[i].x[j], s[i].y[j]))
                    continue;
                cairo_new_sub_path(cr);
                cairo_arc(cr, map_x(f, s[i].x[j]), map_y(f, s[i].y[j]), 2.6 * f->s, 0, 2 * PI);
            }
            cairo_fill(cr);
        }
    }
    cairo_restore(cr);
}

/* the frame, the ticks and their labels */
static void draw_axes(const fig *f, const layout *ly, const ticks *xt, const ticks *yt)
{
    cairo_t *cr = f->cr;
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    cairo_set_line_width(cr, 1);
    cairo_set_dash(cr, NULL, 0, 0);
    double fx0 = floor(f->px0) + 0.5, fx1 = floor(f->px1) + 0.5;
    double fy0 = floor(f->py0) + 0.5, fy1 = floor(f->py1) + 0.5;
    cairo_rectangle(cr, fx0, fy0, fx1 - fx0, fy1 - fy0);
    for (int i = 0; i < xt->n; i++) {
        double X = floor(map_x(f, xt->v[i])) + 0.5;
        cairo_move_to(cr, X, fy1);
        cairo_line_to(cr, X, fy1 + ly->tick_len);
    }
    for (int i = 0; i < yt->n; i++) {
        double Y = floor(map_y(f, yt->v[i])) + 0.5;
        cairo_move_to(cr, fx0, Y);
        cairo_line_to(cr, fx0 - ly->tick_len, Y);
    }
    for (int i = 0; i < yt->nminor; i++) {
        double Y = floor(map_y(f, yt->minor[i])) + 0.5;
        cairo_move_to(cr, fx0, Y);
        cairo_line_to(cr, fx0 - ly->tick_len * 0.55, Y);
    }
    cairo_stroke(cr);
    cairo_font_extents_t fe;
    set_font(cr, f->fs_tick, 0);
    cairo_font_extents(cr, &fe);
    for (int i = 0; i < xt->n; i++)
        text_at(cr, map_x(f, xt->v[i]), fy1 + ly->tick_len + ly->gap + fe.ascent, xt->lab[i],
                0.5, 0);
    for (int i = 0; i < yt->n; i++) {
        double Y = map_y(f, yt->v[i]), X = fx0 - ly->tick_len - ly->gap;
        if (yt->pow10)
            pow10_label(cr, f->fs_tick, yt->k[i], X, Y, 1, 1);
        else
            text_at(cr, X, Y, yt->lab[i], 1, 1);
    }
}

/* the axis titles and the title */
static void draw_titles(const fig *f, const layout *ly, const eg_plot_opts *o)
{
    cairo_t *cr = f->cr;
    double fy1 = floor(f->py1) + 0.5;
    set_font(cr, f->fs_label, 0);
    if (o->xlabel && o->xlabel[0])
        text_at(cr, (f->px0 + f->px1) / 2,
                fy1 + ly->tick_len + ly->gap + ly->tick_h + ly->gap + ly->label_h * 0.8,
                o->xlabel, 0.5, 0);
    if (o->ylabel && o->ylabel[0]) {
        cairo_save(cr);
        cairo_translate(cr, 12 * f->s + ly->label_h * 0.8, (f->py0 + f->py1) / 2);
        cairo_rotate(cr, -PI / 2);
        text_at(cr, 0, 0, o->ylabel, 0.5, 0);
        cairo_restore(cr);
    }
    if (o->title && o->title[0]) {
        set_font(cr, f->fs_title, 1);
        text_at(cr, (f->px0 + f->px1) / 2, 14 * f->s + f->fs_title, o->title, 0.5, 0);
    }
}

/* The legend's top-left corner: on the right of or below the plot, or inside it in the
 * corner (upper right, upper left, lower right, lower left, then the middle right) that
 * covers the fewest data points. */
static void legend_place(const fig *f, const layout *ly, const eg_series *s, int ns, legend *L)
{
    double m = 10 * f->s;
    if (L->place == LEG_RIGHT) {
        L->x = f->px1 + 2 * L->pad;
        L->y = f->py0;
        return;
    }
    if (L->place == LEG_BELOW) {
        L->x = f->px0;
        L->y = f->py1 + ly->xaxis_h + L->pad;
        return;
    }
    double cx[5] = {f->px1 - m - L->w, f->px0 + m, f->px1 - m - L->w, f->px0 + m,
                    f->px1 - m - L->w};
    double cy[5] = {f->py0 + m, f->py0 + m, f->py1 - m - L->h, f->py1 - m - L->h,
                    (f->py0 + f->py1 - L->h) / 2};
    long best = -1;
    for (int c = 0; c < 5; c++) {
        long cov = covered(f, s, ns, cx[c], cy[c], L->w, L->h);
        if (best < 0 || cov < best) {
            best = cov;
            L->x = cx[c];
            L->y = cy[c];
        }
    }
}

/* the legend box at (L->x, L->y): a line sample and the text of each entry */
static void legend_draw(const fig *f, const legend *L, const eg_series *s, int W, int H)
{
    cairo_t *cr = f->cr;
    cairo_rectangle(cr, floor(L->x) + 0.5, floor(L->y) + 0.5, floor(L->w), floor(L->h));
    cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    set_font(cr, f->fs_legend, 0);
    cairo_save(cr);
    cairo_rectangle(cr, L->x, L->y, W - L->x, fmin(L->h + 1, H - L->y));
    cairo_clip(cr);
    for (int e = 0; e < L->n; e++) {
        double cyy = L->y + L->pad + f->s + L->row * e + f->fs_legend / 2;
        if (has_band(f, &s[L->idx[e]])) { /* a band: a shaded box behind the sample */
            const double *c = PALETTE[L->idx[e] % 10];
            cairo_set_source_rgba(cr, c[0], c[1], c[2], 0.22);
            cairo_rectangle(cr, L->x + L->pad, cyy - f->fs_legend * 0.4, L->sample,
                            f->fs_legend * 0.8);
            cairo_fill(cr);
        }
        set_series_style(cr, L->idx[e], f->s);
        cairo_move_to(cr, L->x + L->pad, cyy);
        cairo_line_to(cr, L->x + L->pad + L->sample, cyy);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        text_at(cr, L->x + L->pad + L->sample + 8 * f->s, cyy, L->text[e], 0, 1);
    }
    cairo_restore(cr);
}

/* cairo's PNG stream into the temporary file eg_write_atomic opened */
static cairo_status_t png_chunk(void *f, const unsigned char *data, unsigned int len)
{
    return fwrite(data, 1, len, f) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

static int png_fill(FILE *f, void *surf)
{
    return cairo_surface_write_to_png_stream(surf, png_chunk, f) == CAIRO_STATUS_SUCCESS
               ? 0 : (errno ? errno : EIO);
}

/* writes the surface to path through a temporary file and a rename */
static int write_png(cairo_surface_t *surf, const char *path, eg_err *err)
{
    return eg_write_atomic(path, "", 0, png_fill, surf, err);
}

/* a cairo context on surf with the text rendering options of every figure */
static cairo_t *figure_context(cairo_surface_t *surf)
{
    cairo_t *cr = cairo_create(surf);
    cairo_font_options_t *fo = cairo_font_options_create();
    cairo_font_options_set_antialias(fo, CAIRO_ANTIALIAS_GRAY);
    cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_SLIGHT);
    cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
    cairo_set_font_options(cr, fo);
    cairo_font_options_destroy(fo);
    cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT);
    return cr;
}

/* Lays out and draws the figure on f->cr (a linear pipeline: measure, lay out, draw). */
static int draw_figure(fig *f, const eg_series *s, int ns, const eg_plot_opts *o, int W, int H,
                       legend *L, eg_err *err)
{
    set_font(f->cr, f->fs_tick, 0);
    int rc = legend_measure(f, s, ns, L, err);
    if (rc)
        return rc;
    layout ly;
    ticks yt, xt;
    layout_margins(f, o, &ly);
    layout_plot(f, o, W, H, L, &ly, &yt);
    x_ticks(f, &xt);
    draw_grid(f, &xt, &yt);
    draw_curves(f, s, ns);
    draw_axes(f, &ly, &xt, &yt);
    draw_titles(f, &ly, o);
    if (L->n > 0) {
        legend_place(f, &ly, s, ns, L);
        legend_draw(f, L, s, W, H);
    }
    return EG_OK;
}

int eg_plot_png(const char *path, const eg_series *s, int ns, const eg_plot_opts *o,
                eg_err *err)
{
    eg_plot_opts def;
    if (!o) {
        eg_plot_opts_init(&def);
        o = &def;
    }
    int W = o->width, H = o->height;
    if (W < EG_PLOT_MIN_SIZE || H < EG_PLOT_MIN_SIZE || W > EG_PLOT_MAX_SIZE ||
        H > EG_PLOT_MAX_SIZE)
        return eg_err_set(err, EG_EINPUT, "figure size %dx%d outside %d..%d pixels", W, H,
                          EG_PLOT_MIN_SIZE, EG_PLOT_MAX_SIZE);
    fig f;
    fig_scale(&f, W, H, o->log_y);
    data_limits(&f, s, ns);
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, W, H);
    if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(surf);
        return eg_err_set(err, EG_ERUN, "cannot create a %dx%d image", W, H);
    }
    f.cr = figure_context(surf);
    legend L = {0};
    int rc = draw_figure(&f, s, ns, o, W, H, &L, err);
    if (!rc) {
        cairo_surface_flush(surf);
        if (cairo_status(f.cr) != CAIRO_STATUS_SUCCESS)
            rc = eg_err_set(err, EG_ERUN, "drawing %s failed: %s", path,
                            cairo_status_to_string(cairo_status(f.cr)));
        else
            rc = write_png(surf, path, err);
    }
    legend_free(&L);
    cairo_destroy(f.cr);
    cairo_surface_destroy(surf);
    return rc;
}
