/* data_stream.c - data.cache: stream (image_folder). The rank keeps only the training files'
 * names and labels; a sample's file is decoded when a minibatch needs it. A small cache of
 * decoded samples (direct-mapped: slot = sample mod slots) is filled ahead by one helper
 * thread from the sampler's view of the next minibatches (eg_data_prefetch); a sample not
 * found there is decoded on the spot. Decoding is deterministic, so the floats, and the
 * run's metrics, are those of data.cache: memory. Memory: slots x one sample, whatever the
 * folder's size.
 *
 * A file that fails to decode during the run (removed, truncated, corrupt since start-up)
 * is not hidden: the first failure is kept (file and training sample named) and reported by
 * eg_data_error after the minibatches of the iteration; the helper thread only skips it (the
 * minibatch's own decode then meets it).
 *
 * random_resized_crop (d->rrc): the slots hold decoded images (each its own size) instead of
 * samples; eg_data_stream_get_img hands out a copy, the crop is cut by eg_data_fill_batch. */
#include "data.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct eg_data_stream {
    eg_dataset *d;
    size_t bytes;     /* one sample: dim bytes, or dim floats (resized) */
    int nslots;
    int32_t *tag;     /* the sample in each slot, -1: none */
    uint8_t *slots;   /* nslots x bytes */
    int32_t *queue;   /* samples to decode ahead (a ring) */
    int qcap, qhead, qlen;
    uint8_t *tmp;     /* the helper's decode buffer */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    int running, stop;
    int failed;       /* the first decode failure, in err */
    eg_err err;
    eg_data_img *imgs; /* random_resized_crop: nslots decoded images (pix NULL: none) */
};

static int decode(eg_data_stream *st, int32_t s, void *out, eg_err *err)
{
    eg_dataset *d = st->d;
    int u8 = d->is_u8;
    return d->src->sample(d, d->src, s, u8 ? out : NULL, u8 ? NULL : out, err);
}

static void *helper(void *arg)
{
    eg_data_stream *st = arg;
    pthread_mutex_lock(&st->mu);
    while (!st->stop) {
        if (!st->qlen) {
            pthread_cond_wait(&st->cv, &st->mu);
            continue;
        }
        int32_t s = st->queue[st->qhead];
        st->qhead = (st->qhead + 1) % st->qcap;
        st->qlen--;
        int k = (int)(s % st->nslots);
        if (st->tag[k] == s)
            continue;
        pthread_mutex_unlock(&st->mu);
        eg_err e;
        if (st->imgs) {
            eg_data_img img = {0};
            int rc = st->d->src->image(st->d, st->d->src, s, &img, &e);
            pthread_mutex_lock(&st->mu);
            if (rc == EG_OK) {
                free(st->imgs[k].pix);
                st->imgs[k] = img;
                st->tag[k] = s;
            }
            continue;
        }
        int rc = decode(st, s, st->tmp, &e); /* a failure is met again by the minibatch */
        pthread_mutex_lock(&st->mu);
        if (rc == EG_OK) {
            st->tag[k] = s;
            memcpy(st->slots + (size_t)k * st->bytes, st->tmp, st->bytes);
        }
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

void eg_data_stream_free(eg_data_stream *st)
{
    if (!st)
        return;
    if (st->running) {
        pthread_mutex_lock(&st->mu);
        st->stop = 1;
        pthread_cond_signal(&st->cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->th, NULL);
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cv);
    }
    for (int k = 0; st->imgs && k < st->nslots; k++)
        free(st->imgs[k].pix);
    free(st->imgs);
    free(st->tag);
    free(st->slots);
    free(st->queue);
    free(st->tmp);
    free(st);
}

int eg_data_stream_start(eg_dataset *d, int samples_ahead, eg_err *err)
{
    eg_data_stream *st = eg_calloc(1, sizeof *st, err);
    if (!st)
        return EG_ERUN;
    st->d = d;
    st->bytes = (size_t)d->dim * (d->is_u8 ? 1 : sizeof(float));
    st->nslots = samples_ahead < 64 ? 64 : samples_ahead;
    st->qcap = st->nslots;
    st->tag = eg_malloc((size_t)st->nslots * sizeof *st->tag, err);
    if (d->rrc) /* images of their own sizes instead of fixed-size samples */
        st->imgs = st->tag ? eg_calloc((size_t)st->nslots, sizeof *st->imgs, err) : NULL;
    st->slots = st->tag && (st->imgs || !d->rrc)
                    ? eg_malloc((size_t)(d->rrc ? 1 : st->nslots) * st->bytes, err)
                    : NULL;
    st->queue = st->slots ? eg_malloc((size_t)st->qcap * sizeof *st->queue, err) : NULL;
    st->tmp = st->queue ? eg_malloc(st->bytes, err) : NULL;
    if (!st->tmp) {
        eg_data_stream_free(st);
        return EG_ERUN;
    }
    for (int k = 0; k < st->nslots; k++)
        st->tag[k] = -1;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    if (pthread_create(&st->th, NULL, helper, st) != 0) {
        pthread_mutex_destroy(&st->mu);
        pthread_cond_destroy(&st->cv);
        eg_data_stream_free(st);
        return eg_err_set(err, EG_ERUN, "cannot start the data read-ahead thread");
    }
    st->running = 1;
    d->stream = st;
    return EG_OK;
}

/* random_resized_crop: a decoded image is counted as one sample's bytes (an estimate) */
size_t eg_data_stream_bytes(const eg_data_stream *st)
{
    return st ? (size_t)st->nslots * (st->bytes + sizeof *st->tag + sizeof *st->queue) + st->bytes
              : 0;
}

void eg_data_prefetch(void *dataset, const int32_t *idx, int n)
{
    eg_data_stream *st = ((eg_dataset *)dataset)->stream;
    if (!st)
        return;
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < n && st->qlen < st->qcap; i++) {
        st->queue[(st->qhead + st->qlen) % st->qcap] = idx[i];
        st->qlen++;
    }
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

int eg_data_stream_get(eg_data_stream *st, int32_t s, void *out)
{
    int k = (int)(s % st->nslots);
    pthread_mutex_lock(&st->mu);
    if (st->tag[k] == s) {
        memcpy(out, st->slots + (size_t)k * st->bytes, st->bytes);
        pthread_mutex_unlock(&st->mu);
        return EG_OK;
    }
    pthread_mutex_unlock(&st->mu);
    eg_err e;
    int rc = decode(st, s, out, &e);
    pthread_mutex_lock(&st->mu);
    if (rc == EG_OK) {
        st->tag[k] = s;
        memcpy(st->slots + (size_t)k * st->bytes, out, st->bytes);
    } else if (!st->failed) {
        st->failed = 1;
        eg_err_set(&st->err, EG_ERUN, "%.900s (training sample %d of %d, decoded during the run with "
                   "data.cache: stream)", e.msg, (int)s + 1, st->d->n_train);
    }
    pthread_mutex_unlock(&st->mu);
    if (rc != EG_OK)
        memset(out, 0, st->bytes);
    return rc;
}

int eg_data_stream_get_img(eg_data_stream *st, int32_t s, eg_data_img *out)
{
    int k = (int)(s % st->nslots);
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&st->mu);
    if (st->tag[k] == s && st->imgs[k].pix) {
        const eg_data_img *in = &st->imgs[k];
        size_t n = (size_t)in->w * (size_t)in->h * (size_t)in->c;
        uint8_t *pix = malloc(n);
        if (pix) {
            memcpy(pix, in->pix, n);
            *out = (eg_data_img){in->w, in->h, in->c, pix};
            pthread_mutex_unlock(&st->mu);
            return EG_OK;
        }
    }
    pthread_mutex_unlock(&st->mu);
    eg_err e;
    int rc = st->d->src->image(st->d, st->d->src, s, out, &e);
    if (rc != EG_OK) {
        memset(out, 0, sizeof *out);
        pthread_mutex_lock(&st->mu);
        if (!st->failed) {
            st->failed = 1;
            eg_err_set(&st->err, EG_ERUN, "%.900s (training sample %d of %d, decoded during the "
                       "run with data.cache: stream)", e.msg, (int)s + 1, st->d->n_train);
        }
        pthread_mutex_unlock(&st->mu);
    }
    return rc;
}

void eg_data_stream_fail(eg_data_stream *st, const char *what)
{
    pthread_mutex_lock(&st->mu);
    if (!st->failed) {
        st->failed = 1;
        eg_err_set(&st->err, EG_ERUN, "%s", what);
    }
    pthread_mutex_unlock(&st->mu);
}

int eg_data_error(const eg_dataset *d, eg_err *err)
{
    eg_data_stream *st = d->stream;
    if (!st)
        return EG_OK;
    pthread_mutex_lock(&st->mu);
    int failed = st->failed;
    if (failed)
        *err = st->err;
    pthread_mutex_unlock(&st->mu);
    return failed ? EG_ERUN : EG_OK;
}
