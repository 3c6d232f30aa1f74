/* backend.c — libtriton_clipprep.so: clipprep's engine as a Triton backend. Triton's entry
 * points (triton_api.h) around the daemon's own per-image CPU path (image_work.h: decode, plan,
 * resample, normalise), profiles and normalisation tables, so a Triton model gives the same
 * bytes as clipprepd for the same profile.
 *
 * A model: input `images` (BYTES, one encoded image per batch element), output `pixel_values`
 * [N, 3, H, W] FP32 or FP16 (model_settings.h). An execute call gets one or more requests
 * (Triton's dynamic batcher); their images are processed together on the instance's thread pool.
 * A request whose input or any image is bad gets an error response naming the image and the
 * cause; the other requests of the batch are answered normally.
 *
 * KIND_CPU instances run the CPU path on their own thread pool. A KIND_GPU instance owns a
 * CUDA executor (server/exec_cuda.c, the daemon's) on its device, fed through its own batch
 * queue: each request's pixel_values buffer is asked of Triton in GPU memory on that device, so
 * the executor copies each image's result straight into it on the batch's stream (the daemon's
 * out_direct / out_device path of format=cuda_ipc) and the next ensemble step reads it without a
 * trip through the host; Triton may answer host memory instead, which the executor then fills
 * from its pinned output. A job completes only after its batch's stream was synchronised (or,
 * on the CPU path, after its synchronous copy into device memory), so every response is sent
 * after its bytes are in place. CUDA failures follow docs/gpu.md: a failed launch, wait or copy
 * is redone on the CPU path (same bytes); only an image whose device-memory destination cannot
 * be written any more (a lost GPU) fails its request, with TRITONSERVER_ERROR_UNAVAILABLE
 * naming the cause. */
#include <dlfcn.h>
#include <limits.h>
#include <stdatomic.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../kernels/coeffs.h"
#include "../server/config.h"
#include "../server/executor.h"
#include "../server/geometry.h"
#include "../server/image_work.h"
#include "../server/parallel.h"
#include "../server/profile.h"
#include "model_settings.h"
#include "triton_api.h"

typedef struct {
    char name[128];
    model_settings set;
    profile_set profiles;
    const profile *prof;
    normalize_table table;
    reference_id ref;
    bool exif, fast;
} model_state;

typedef struct {
    model_state *model;
    TRITONBACKEND_ModelInstance *instance;
    parallel_pool *pool;
    int workers; /* pool threads + the calling (Triton instance) thread */
    pthread_mutex_t scratch_mu;
    cpu_scratch *scratch;
    bool *scratch_busy;
    /* KIND_GPU */
    bool gpu;
    int device;                /* TRITONBACKEND_ModelInstanceDeviceId */
    bool queue_ok;
    batch_queue queue;         /* this instance's jobs, drained by its executor */
    executor *ex;              /* the CUDA executor on `device` */
    int gpus_lost_reported;
} instance_state;

static TRITONSERVER_Error *errorf(TRITONSERVER_Error_Code code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static TRITONSERVER_Error *errorf(TRITONSERVER_Error_Code code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return TRITONSERVER_ErrorNew(code, msg);
}

static void log_error(const char *what, TRITONSERVER_Error *e)
{
    if (!e)
        return;
    char msg[640];
    snprintf(msg, sizeof msg, "clipprep: %s: %s", what, TRITONSERVER_ErrorMessage(e));
    TRITONSERVER_Error *le = TRITONSERVER_LogMessage(TRITONSERVER_LOG_ERROR, __FILE__, __LINE__,
                                                     msg);
    if (le)
        TRITONSERVER_ErrorDelete(le);
    TRITONSERVER_ErrorDelete(e);
}

static uint64_t now_ns(void) /* steady clock, as Triton's statistics expect */
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

TRITONSERVER_Error *TRITONBACKEND_Initialize(TRITONBACKEND_Backend *backend)
{
    (void)backend;
    uint32_t major = 0, minor = 0;
    TRITONSERVER_Error *e = TRITONBACKEND_ApiVersion(&major, &minor);
    if (e)
        return e;
    if (major != CLIPPREP_TRITONBACKEND_API_MAJOR || minor < CLIPPREP_TRITONBACKEND_API_MINOR)
        return errorf(TRITONSERVER_ERROR_UNSUPPORTED,
                      "clipprep backend needs Triton backend API %d.%d or a later 1.x; this "
                      "server has %u.%u", CLIPPREP_TRITONBACKEND_API_MAJOR,
                      CLIPPREP_TRITONBACKEND_API_MINOR, major, minor);
    return NULL;
}

/* profiles/ next to this library (what `make triton-backend` lays out). */
static void default_profiles_dir(char *out, size_t len)
{
    Dl_info info;
    char path[1024] = ".";
    if (dladdr((void *)&default_profiles_dir, &info) && info.dli_fname)
        snprintf(path, sizeof path, "%s", info.dli_fname);
    snprintf(out, len, "%s/profiles", dirname(path));
}

static TRITONSERVER_Error *model_load(TRITONBACKEND_Model *model, model_state *m)
{
    const char *name = "";
    TRITONSERVER_Error *e = TRITONBACKEND_ModelName(model, &name);
    if (e)
        return e;
    snprintf(m->name, sizeof m->name, "%s", name);
    TRITONSERVER_Message *msg = NULL;
    if ((e = TRITONBACKEND_ModelConfig(model, 1, &msg)))
        return e;
    const char *json = NULL;
    size_t json_len = 0;
    char err[512] = "";
    bool ok = false;
    if (!(e = TRITONSERVER_MessageSerializeToJson(msg, &json, &json_len)))
        ok = model_settings_parse(json, json_len, &m->set, err, sizeof err);
    TRITONSERVER_Error *de = TRITONSERVER_MessageDelete(msg);
    if (de)
        TRITONSERVER_ErrorDelete(de);
    if (e)
        return e;
    if (!ok)
        return errorf(TRITONSERVER_ERROR_INVALID_ARG, "model %s: %s", m->name, err);

    char dir[1100];
    if (m->set.profiles_dir[0])
        snprintf(dir, sizeof dir, "%s", m->set.profiles_dir);
    else
        default_profiles_dir(dir, sizeof dir);
    cp_error perr = {0};
    if (!profiles_load_dir(dir, &m->profiles, &perr))
        return errorf(TRITONSERVER_ERROR_INVALID_ARG, "model %s: profiles_dir %s: %s", m->name,
                      dir, perr.message);
    m->prof = profiles_find(&m->profiles, m->set.profile);
    if (!m->prof)
        return errorf(TRITONSERVER_ERROR_INVALID_ARG,
                      "model %s: parameter profile: no profile \"%s\" in %s", m->name,
                      m->set.profile, dir);
    if (m->prof->vlm.kind != VLM_NONE)
        return errorf(TRITONSERVER_ERROR_UNSUPPORTED,
                      "model %s: profile \"%s\" is a vision-language profile (variable-size "
                      "arrays): the Triton backend serves fixed-size profiles; use the daemon's "
                      "KServe v2 API for it (docs/vlm.md)", m->name, m->prof->name);
    if (m->prof->out_height != m->set.out_h || m->prof->out_width != m->set.out_w)
        return errorf(TRITONSERVER_ERROR_INVALID_ARG,
                      "model %s: output pixel_values dims [ 3, %d, %d ] differ from profile "
                      "%s's output [ 3, %d, %d ]", m->name, m->set.out_h, m->set.out_w,
                      m->prof->name, m->prof->out_height, m->prof->out_width);
    m->exif = m->set.exif < 0 ? m->prof->exif : m->set.exif;
    m->fast = m->set.fast < 0 ? m->prof->fast : m->set.fast;
    m->ref = m->prof->default_ref_set ? m->prof->default_ref : REF_TRANSFORMERS4;
    if (m->set.reference[0] && !reference_parse(m->set.reference, &m->ref))
        return errorf(TRITONSERVER_ERROR_INVALID_ARG, "model %s: parameter reference: \"%s\" "
                      "is not one of %s", m->name, m->set.reference, reference_names_list());
    if (!(m->prof->references & (1u << m->ref)))
        return errorf(TRITONSERVER_ERROR_INVALID_ARG, "model %s: profile %s does not support "
                      "reference %s", m->name, m->prof->name, reference_name(m->ref));
    if (reference_norm(m->ref) == NORM_FUSED_FLOAT32)
        normalize_table_build_fused(&m->table, m->prof->rescale_factor, m->prof->mean,
                                    m->prof->std);
    else
        normalize_table_build(&m->table, m->prof->rescale_factor, m->prof->mean, m->prof->std);
    memcpy(m->table.fill, m->prof->fill, sizeof m->prof->fill); /* padding colour */
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInitialize(TRITONBACKEND_Model *model)
{
    model_state *m = calloc(1, sizeof *m);
    if (!m)
        return errorf(TRITONSERVER_ERROR_INTERNAL, "out of memory");
    TRITONSERVER_Error *e = model_load(model, m);
    if (!e)
        e = TRITONBACKEND_ModelSetState(model, m);
    if (e) {
        profiles_free(&m->profiles);
        free(m);
    }
    return e;
}

TRITONSERVER_Error *TRITONBACKEND_ModelFinalize(TRITONBACKEND_Model *model)
{
    void *p = NULL;
    TRITONSERVER_Error *e = TRITONBACKEND_ModelState(model, &p);
    if (e)
        return e;
    model_state *m = p;
    if (m) {
        profiles_free(&m->profiles);
        free(m);
    }
    return NULL;
}

static void instance_free(instance_state *s)
{
    if (!s)
        return;
    if (s->ex) { /* no execute is in flight: the queue is empty; the worker exits */
        queue_close(&s->queue);
        s->ex->ops->stop(s->ex);
        s->ex->ops->destroy(s->ex);
    }
    if (s->queue_ok)
        queue_destroy(&s->queue);
    if (s->pool)
        parallel_pool_destroy(s->pool);
    for (int i = 0; s->scratch && i < s->workers; i++)
        cpu_scratch_free(&s->scratch[i]);
    free(s->scratch);
    free(s->scratch_busy);
    pthread_mutex_destroy(&s->scratch_mu);
    free(s);
}

/* A KIND_GPU instance: its batch queue and a CUDA executor on `device` (the daemon's
 * settings, except those below). Fails with the cause: built without CUDA, no such device, the
 * kernels cannot run there, out of device or pinned memory. */
static TRITONSERVER_Error *gpu_start(instance_state *s, int device)
{
    const model_state *m = s->model;
    s->gpu = true;
    s->device = device;
    int batch = m->set.max_batch_size; /* Triton gives an execute call at most this many */
    if (!queue_init(&s->queue, batch, batch, 0, NULL, 0))
        return errorf(TRITONSERVER_ERROR_INTERNAL, "out of memory");
    s->queue_ok = true;
    cp_config cfg;
    config_defaults(&cfg);
    cfg.max_batch_size = batch;
    snprintf(cfg.cuda_devices, sizeof cfg.cuda_devices, "%d", device);
    snprintf(cfg.cuda_sync, sizeof cfg.cuda_sync, "auto"); /* Triton owns the context's flags */
    if (m->set.staging_bytes > 0)
        cfg.staging_bytes = (size_t)m->set.staging_bytes;
    size_t slot = (size_t)3 * m->prof->out_height * m->prof->out_width *
                  tensor_dtype_size(m->set.dtype);
    cp_error err = {0};
    s->ex = executor_cuda_create(&s->queue, &cfg, &m->table, 1, slot, &err);
    if (!s->ex)
        return errorf(TRITONSERVER_ERROR_UNAVAILABLE,
                      "model %s: KIND_GPU instance on device %d: the CUDA path cannot start: %s",
                      m->name, device, err.message);
    char msg[400];
    snprintf(msg, sizeof msg, "clipprep: model %s: KIND_GPU instance on device %d: CUDA "
             "executor on %s, staging %zu bytes", m->name, device, s->ex->device,
             cfg.staging_bytes);
    TRITONSERVER_Error *le = TRITONSERVER_LogMessage(TRITONSERVER_LOG_INFO, __FILE__, __LINE__,
                                                     msg);
    if (le)
        TRITONSERVER_ErrorDelete(le);
    return NULL;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceInitialize(TRITONBACKEND_ModelInstance *instance)
{
    TRITONSERVER_InstanceGroupKind kind;
    TRITONBACKEND_Model *model;
    void *mp = NULL;
    TRITONSERVER_Error *e;
    if ((e = TRITONBACKEND_ModelInstanceKind(instance, &kind)) ||
        (e = TRITONBACKEND_ModelInstanceModel(instance, &model)) ||
        (e = TRITONBACKEND_ModelState(model, &mp)))
        return e;
    model_state *m = mp;
    if (kind != TRITONSERVER_INSTANCEGROUPKIND_CPU && kind != TRITONSERVER_INSTANCEGROUPKIND_GPU)
        return errorf(TRITONSERVER_ERROR_UNSUPPORTED,
                      "model %s: the clipprep backend runs KIND_CPU instances (CPU path) and "
                      "KIND_GPU instances (CUDA path); set instance_group kind to one of them",
                      m->name);
    int32_t device = 0;
    if (kind == TRITONSERVER_INSTANCEGROUPKIND_GPU &&
        (e = TRITONBACKEND_ModelInstanceDeviceId(instance, &device)))
        return e;
    instance_state *s = calloc(1, sizeof *s);
    if (!s)
        return errorf(TRITONSERVER_ERROR_INTERNAL, "out of memory");
    pthread_mutex_init(&s->scratch_mu, NULL);
    s->model = m;
    s->instance = instance;
    if (kind == TRITONSERVER_INSTANCEGROUPKIND_GPU) { /* the executor has its own threads */
        if ((e = gpu_start(s, device))) {
            instance_free(s);
            return e;
        }
    } else {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        s->workers = m->set.threads > 0 ? m->set.threads : (cores > 0 ? (int)cores : 1);
        s->pool = parallel_pool_create(s->workers - 1);
        s->scratch = calloc((size_t)s->workers, sizeof *s->scratch);
        s->scratch_busy = calloc((size_t)s->workers, sizeof *s->scratch_busy);
        if (!s->pool || !s->scratch || !s->scratch_busy) {
            instance_free(s);
            return errorf(TRITONSERVER_ERROR_INTERNAL, "out of memory");
        }
    }
    if ((e = TRITONBACKEND_ModelInstanceSetState(instance, s)))
        instance_free(s);
    return e;
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceFinalize(TRITONBACKEND_ModelInstance *instance)
{
    void *p = NULL;
    TRITONSERVER_Error *e = TRITONBACKEND_ModelInstanceState(instance, &p);
    if (e)
        return e;
    instance_free(p);
    return NULL;
}

/* ---- execute ------------------------------------------------------------------------------ */

struct gpu_run;

/* A request as the CUDA executor sees it (job.h's opaque `struct request`; the daemon's own is
 * in server/request.h, which this library does not link): job_complete and job_request_failed
 * below are this backend's. */
struct request {
    struct gpu_run *run;
    atomic_int first_failed;   /* the lowest index of a failed image, INT_MAX while none */
};

typedef struct {
    TRITONBACKEND_Request *req;
    TRITONBACKEND_Response *resp;
    TRITONSERVER_Error *error; /* the request's failure (first bad image), or NULL */
    uint8_t *joined;           /* the input when Triton handed it in several buffers */
    int first, count;          /* its images: items[first .. first+count) */
    struct request exec;       /* KIND_GPU: its jobs' owner */
} request_work;

typedef struct {
    int request;
    job j;
    bool failed;
    cp_error err;
} image_item;

/* One execute call's jobs in the CUDA executor. */
typedef struct gpu_run {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int remaining;             /* jobs not completed yet */
    job *jobs;                 /* contiguous, as the queue takes them */
    int *item_of;              /* jobs[k] is items[item_of[k]] */
    image_item *items;
} gpu_run;

typedef struct {
    instance_state *inst;
    request_work *reqs;
    image_item *items;
} batch_ctx;

/* The request's `images` input as one contiguous host buffer. */
static TRITONSERVER_Error *input_bytes(request_work *w, int64_t *batch, const uint8_t **data,
                                       uint64_t *size)
{
    TRITONBACKEND_Input *in;
    TRITONSERVER_Error *e = TRITONBACKEND_RequestInput(w->req, "images", &in);
    if (e)
        return e;
    TRITONSERVER_DataType dt;
    const int64_t *shape;
    uint32_t dims, buffers;
    if ((e = TRITONBACKEND_InputProperties(in, NULL, &dt, &shape, &dims, size, &buffers)))
        return e;
    if (dt != TRITONSERVER_TYPE_BYTES || dims != 2 || shape[1] != 1 || shape[0] < 1)
        return errorf(TRITONSERVER_ERROR_INVALID_ARG,
                      "input images must be BYTES of shape [N, 1]: one encoded image per batch "
                      "element");
    *batch = shape[0];
    uint8_t *joined = NULL;
    uint64_t at = 0;
    for (uint32_t b = 0; b < buffers; b++) {
        const void *buf;
        uint64_t len;
        TRITONSERVER_MemoryType mt = TRITONSERVER_MEMORY_CPU;
        int64_t mt_id = 0;
        if ((e = TRITONBACKEND_InputBuffer(in, b, &buf, &len, &mt, &mt_id)))
            return e;
        if (mt == TRITONSERVER_MEMORY_GPU)
            return errorf(TRITONSERVER_ERROR_UNSUPPORTED,
                          "input images is in GPU memory; the clipprep backend reads host memory");
        if (buffers == 1) {
            *data = buf;
            return NULL;
        }
        if (!joined && !(joined = w->joined = malloc(*size ? *size : 1)))
            return errorf(TRITONSERVER_ERROR_INTERNAL, "out of memory for %llu input bytes",
                          (unsigned long long)*size);
        if (len > *size - at)
            return errorf(TRITONSERVER_ERROR_INVALID_ARG, "input images: buffers exceed its size");
        memcpy(joined + at, buf, len);
        at += len;
    }
    *data = joined;
    return NULL;
}

/* Splits the BYTES tensor (each element: 4-byte little-endian length, then the bytes) into
 * jobs, reading each image's header and checking the pixel limit. */
static TRITONSERVER_Error *prepare_request(const model_state *m, request_work *w,
                                           image_item *items, int *n_items, int capacity)
{
    int64_t batch = 0;
    const uint8_t *data = NULL;
    uint64_t size = 0;
    TRITONSERVER_Error *e = input_bytes(w, &batch, &data, &size);
    if (e)
        return e;
    if (batch > capacity - *n_items)
        return errorf(TRITONSERVER_ERROR_INVALID_ARG, "batch of %lld images is over "
                      "max_batch_size %d", (long long)batch, m->set.max_batch_size);
    w->first = *n_items;
    uint64_t at = 0;
    for (int64_t i = 0; i < batch; i++) {
        if (size - at < 4)
            return errorf(TRITONSERVER_ERROR_INVALID_ARG,
                          "input images: element %lld is truncated (BYTES elements are a 4-byte "
                          "length followed by the bytes)", (long long)i);
        uint32_t len = (uint32_t)data[at] | (uint32_t)data[at + 1] << 8 |
                       (uint32_t)data[at + 2] << 16 | (uint32_t)data[at + 3] << 24;
        at += 4;
        if (len > size - at)
            return errorf(TRITONSERVER_ERROR_INVALID_ARG,
                          "input images: element %lld says %u bytes, only %llu remain",
                          (long long)i, len, (unsigned long long)(size - at));
        image_item *it = &items[*n_items + i];
        *it = (image_item){0};
        cp_error err = {0};
        image_header hdr;
        if (!decode_read_header(data + at, len, &hdr, &err))
            return errorf(TRITONSERVER_ERROR_INVALID_ARG, "image %lld: %s: %s", (long long)i,
                          cp_status_code_name(err.status), err.message);
        long long pixels = (long long)hdr.width * hdr.height;
        if (pixels > m->set.max_pixels)
            return errorf(TRITONSERVER_ERROR_INVALID_ARG,
                          "image %lld: image_too_large: image is %dx%d = %lld pixels, limit "
                          "%lld (parameter max_pixels)", (long long)i, hdr.width, hdr.height,
                          pixels, m->set.max_pixels);
        it->j = (job){.index = (int)i, .data = data + at, .len = len, .hdr = hdr,
                      .dopt = {.apply_orientation = m->exif, .max_scans = m->set.max_scans},
                      .prof = m->prof, .ref = m->ref, .table = &m->table,
                      .dtype = m->set.dtype};
        if (m->fast)
            it->j.dopt.scale_denom = fast_scale_denom(m->prof, hdr.width, hdr.height, 2);
        job_apply_reference(&it->j);
        /* a resize target the planner can hold (absurd aspect ratios), as the daemon admits */
        int ow, oh;
        decode_output_size(&hdr, &it->j.dopt, &ow, &oh);
        if (!geometry_check(m->prof, ow, oh, &err))
            return errorf(TRITONSERVER_ERROR_INVALID_ARG, "image %lld: %s: %s", (long long)i,
                          cp_status_code_name(err.status), err.message);
        at += len;
    }
    if (at != size)
        return errorf(TRITONSERVER_ERROR_INVALID_ARG,
                      "input images: %llu bytes after the last of its %lld elements",
                      (unsigned long long)(size - at), (long long)batch);
    w->count = (int)batch;
    *n_items += (int)batch;
    return NULL;
}

/* The response and its pixel_values buffer; the jobs' outputs point into it. A KIND_GPU
 * instance asks for GPU memory on its device and takes what Triton gives: GPU memory (of any
 * device: the copies use unified addressing) is written by the executor directly, host memory
 * (CPU or pinned) from the executor's pinned output. */
static TRITONSERVER_Error *prepare_output(const instance_state *s, request_work *w,
                                          image_item *items)
{
    const model_state *m = s->model;
    TRITONSERVER_Error *e = TRITONBACKEND_ResponseNew(&w->resp, w->req);
    if (e)
        return e;
    int64_t shape[4] = {w->count, 3, m->prof->out_height, m->prof->out_width};
    TRITONBACKEND_Output *out;
    if ((e = TRITONBACKEND_ResponseOutput(w->resp, &out, "pixel_values",
                                          m->set.dtype == DTYPE_FLOAT16 ? TRITONSERVER_TYPE_FP16
                                                                        : TRITONSERVER_TYPE_FP32,
                                          shape, 4)))
        return e;
    size_t slot = (size_t)3 * m->prof->out_height * m->prof->out_width *
                  tensor_dtype_size(m->set.dtype);
    void *buf;
    TRITONSERVER_MemoryType mt = s->gpu ? TRITONSERVER_MEMORY_GPU : TRITONSERVER_MEMORY_CPU;
    int64_t mt_id = s->gpu ? s->device : 0;
    if ((e = TRITONBACKEND_OutputBuffer(out, &buf, slot * (size_t)w->count, &mt, &mt_id)))
        return e;
    if (mt == TRITONSERVER_MEMORY_GPU && !s->gpu)
        return errorf(TRITONSERVER_ERROR_UNSUPPORTED,
                      "Triton offered GPU memory for pixel_values to a KIND_CPU instance; it "
                      "writes host memory (use a KIND_GPU instance for GPU outputs)");
    if (!buf && w->count > 0)
        return errorf(TRITONSERVER_ERROR_INTERNAL, "Triton gave no buffer for pixel_values");
    bool device = mt == TRITONSERVER_MEMORY_GPU;
    for (int i = 0; i < w->count; i++) {
        job *j = &items[w->first + i].j;
        j->out = (uint8_t *)buf + slot * (size_t)i;
        j->out_direct = device; /* copied on the batch's stream, device to device */
        j->out_device = device; /* a CPU-path result gets there through a CUDA copy */
    }
    return NULL;
}

static cpu_scratch *scratch_take(instance_state *s)
{
    pthread_mutex_lock(&s->scratch_mu);
    int i = 0;
    while (s->scratch_busy[i]) /* never more takers than workers */
        i++;
    s->scratch_busy[i] = true;
    pthread_mutex_unlock(&s->scratch_mu);
    return &s->scratch[i];
}

static void scratch_give(instance_state *s, cpu_scratch *c)
{
    pthread_mutex_lock(&s->scratch_mu);
    s->scratch_busy[c - s->scratch] = false;
    pthread_mutex_unlock(&s->scratch_mu);
}

/* ---- KIND_GPU: the CUDA executor's completion callbacks (job.h) ---- */

void job_complete(job *j, const cp_error *err)
{
    gpu_run *run = j->req->run;
    pthread_mutex_lock(&run->mu);
    if (err) {
        image_item *it = &run->items[run->item_of[j - run->jobs]];
        it->failed = true;
        it->err = *err;
        if (j->index < atomic_load(&j->req->first_failed))
            atomic_store(&j->req->first_failed, j->index);
    }
    if (--run->remaining == 0)
        pthread_cond_signal(&run->cv);
    pthread_mutex_unlock(&run->mu);
}

/* Images after a failed one may be skipped (the request fails with its lowest bad index). */
bool job_request_failed(const job *j)
{
    return j->index > atomic_load(&j->req->first_failed);
}

/* Runs the batch's images on the instance's CUDA executor and waits until every one is
 * complete: in device memory after its stream's synchronisation, or failed. */
static void run_gpu(instance_state *s, request_work *reqs, image_item *items, int n_items)
{
    gpu_run run = {.items = items};
    pthread_mutex_init(&run.mu, NULL);
    pthread_cond_init(&run.cv, NULL);
    run.jobs = calloc(n_items ? (size_t)n_items : 1, sizeof *run.jobs);
    run.item_of = calloc(n_items ? (size_t)n_items : 1, sizeof *run.item_of);
    int n = 0;
    for (int i = 0; i < n_items; i++) {
        request_work *w = &reqs[items[i].request];
        if (w->error)
            continue;
        if (!run.jobs || !run.item_of) {
            items[i].failed = true;
            cp_fail(&items[i].err, CP_ERR_INTERNAL, "out of memory");
            continue;
        }
        w->exec.run = &run;
        atomic_store(&w->exec.first_failed, INT_MAX);
        run.jobs[n] = items[i].j;
        run.jobs[n].req = &w->exec;
        run.item_of[n++] = i;
    }
    if (n > 0) {
        run.remaining = n;
        /* (an execute call holds at most max_batch_size images: the queue's capacity, and no
           other call of this instance is in flight) */
        if (queue_reserve(&s->queue, n)) {
            queue_push_reserved(&s->queue, run.jobs, n);
            pthread_mutex_lock(&run.mu);
            while (run.remaining > 0)
                pthread_cond_wait(&run.cv, &run.mu);
            pthread_mutex_unlock(&run.mu);
        } else {
            for (int k = 0; k < n; k++) {
                items[run.item_of[k]].failed = true;
                cp_fail(&items[run.item_of[k]].err, CP_ERR_OVERLOADED,
                        "the instance's batch queue is full");
            }
        }
    }
    free(run.jobs);
    free(run.item_of);
    pthread_cond_destroy(&run.cv);
    pthread_mutex_destroy(&run.mu);
    int lost = atomic_load(&s->ex->gpus_lost);
    if (lost > s->gpus_lost_reported) {
        s->gpus_lost_reported = lost;
        char msg[640];
        snprintf(msg, sizeof msg, "clipprep: model %s: KIND_GPU instance on device %d: the GPU "
                 "was taken out of service (its CUDA context is lost or every batch fails; "
                 "docs/gpu.md): images are computed on the CPU path, and requests whose output "
                 "is in GPU memory fail with UNAVAILABLE; restart the server to get a new "
                 "context", s->model->name, s->device);
        TRITONSERVER_Error *le = TRITONSERVER_LogMessage(TRITONSERVER_LOG_ERROR, __FILE__,
                                                         __LINE__, msg);
        if (le)
            TRITONSERVER_ErrorDelete(le);
    }
}

/* Triton's code for a failed image: the daemon's HTTP status classes. */
static TRITONSERVER_Error_Code image_error_code(cp_status st)
{
    switch (st) {
    case CP_ERR_UNAVAILABLE:
    case CP_ERR_OVERLOADED:
        return TRITONSERVER_ERROR_UNAVAILABLE;
    case CP_ERR_INTERNAL:
        return TRITONSERVER_ERROR_INTERNAL;
    default:
        return TRITONSERVER_ERROR_INVALID_ARG;
    }
}

static void process_one(void *arg, int i)
{
    batch_ctx *c = arg;
    image_item *it = &c->items[i];
    if (c->reqs[it->request].error) /* its request failed before the batch started */
        return;
    cpu_scratch *s = scratch_take(c->inst);
    it->failed = !process_job_cpu(&it->j, s, &it->err);
    scratch_give(c->inst, s);
}

TRITONSERVER_Error *TRITONBACKEND_ModelInstanceExecute(TRITONBACKEND_ModelInstance *instance,
                                                       TRITONBACKEND_Request **requests,
                                                       const uint32_t request_count)
{
    uint64_t exec_start = now_ns();
    void *p = NULL;
    TRITONSERVER_Error *e = TRITONBACKEND_ModelInstanceState(instance, &p);
    if (e)
        return e;
    instance_state *s = p;
    const model_state *m = s->model;
    /* Triton's batcher never gathers more than max_batch_size images per execute call. */
    int capacity = m->set.max_batch_size;
    request_work *reqs = calloc(request_count ? request_count : 1, sizeof *reqs);
    image_item *items = calloc((size_t)capacity, sizeof *items);
    if (!reqs || !items) {
        free(reqs);
        free(items);
        return errorf(TRITONSERVER_ERROR_INTERNAL, "out of memory"); /* Triton keeps them */
    }
    int n_items = 0;
    for (uint32_t r = 0; r < request_count; r++) {
        request_work *w = &reqs[r];
        w->req = requests[r];
        int before = n_items;
        w->error = prepare_request(m, w, items, &n_items, capacity);
        for (int i = before; i < n_items; i++)
            items[i].request = (int)r;
        if (w->error) { /* none of its images run */
            for (int i = before; i < capacity; i++)
                items[i] = (image_item){0};
            n_items = before;
            w->count = 0;
            continue;
        }
        w->error = prepare_output(s, w, items);
        if (w->error) /* its items stay in the list but are skipped (process_one) */
            continue;
    }

    uint64_t compute_start = now_ns();
    if (s->gpu) {
        run_gpu(s, reqs, items, n_items);
    } else {
        batch_ctx ctx = {s, reqs, items};
        parallel_for(s->pool, n_items, process_one, &ctx);
    }
    uint64_t compute_end = now_ns();

    uint64_t ok_images = 0;
    for (uint32_t r = 0; r < request_count; r++) {
        request_work *w = &reqs[r];
        for (int i = 0; !w->error && i < w->count; i++) {
            image_item *it = &items[w->first + i];
            if (it->failed)
                w->error = errorf(image_error_code(it->err.status), "image %d: %s: %s", i,
                                  cp_status_code_name(it->err.status), it->err.message);
        }
        if (!w->resp) {
            TRITONSERVER_Error *re = TRITONBACKEND_ResponseNew(&w->resp, w->req);
            if (re) {
                log_error("could not create a response", re);
                w->resp = NULL;
            }
        }
        if (w->resp)
            log_error("could not send a response",
                      TRITONBACKEND_ResponseSend(w->resp, TRITONSERVER_RESPONSE_COMPLETE_FINAL,
                                                 w->error));
        if (!w->error)
            ok_images += (uint64_t)w->count;
        log_error("could not report statistics",
                  TRITONBACKEND_ModelInstanceReportStatistics(instance, w->req, !w->error,
                                                              exec_start, compute_start,
                                                              compute_end, now_ns()));
        log_error("could not release a request",
                  TRITONBACKEND_RequestRelease(w->req, TRITONSERVER_REQUEST_RELEASE_ALL));
        if (w->error)
            TRITONSERVER_ErrorDelete(w->error);
        free(w->joined);
    }
    axis_coeffs_cache_clear(); /* Triton's thread keeps no coefficient tables past the call */
    if (ok_images)
        log_error("could not report batch statistics",
                  TRITONBACKEND_ModelInstanceReportBatchStatistics(
                      instance, ok_images, exec_start, compute_start, compute_end, now_ns()));
    free(reqs);
    free(items);
    return NULL;
}
