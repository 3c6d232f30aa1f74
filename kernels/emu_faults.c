/* emu_faults.c — the schedule of injected failures for the emulated CUDA engine
 * (emu_faults.h): parsing CLIPPREP_EMU_FAULTS / CLIPPREP_EMU_DEVICES and counting calls per
 * device and fault point. Test builds only. */
#ifdef CLIPPREP_CUDA_EMULATION

#include "emu_faults.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULES 32
#define MAX_DEVICES 16

typedef struct {
    int device;          /* -1: every device */
    emu_fault_point point;
    long first, last;    /* 1-based call numbers, inclusive */
    bool sticky;
} fault_rule;

static const char *const point_names[EMU_FAULT_POINTS] = {"check", "launch", "copy", "wait",
                                                          "direct"};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static bool parsed, parse_ok;
static char parse_err[256];
static int n_devices = 1, n_rules;
static fault_rule rules[MAX_RULES];
static long calls[MAX_DEVICES][EMU_FAULT_POINTS];
static bool lost[MAX_DEVICES];

static bool parse_long(const char **p, long *out)
{
    char *end;
    if (**p < '0' || **p > '9')
        return false;
    long v = strtol(*p, &end, 10);
    if (v < 1 || v > INT_MAX)
        return false;
    *p = end;
    *out = v;
    return true;
}

/* [devD.]point@(N|N-M|N+|*)[:sticky] */
static bool parse_rule(const char *s, size_t len, fault_rule *r)
{
    char buf[96];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    const char *p = buf;
    r->device = -1;
    if (!strncmp(p, "dev", 3)) {
        p += 3;
        long d;
        if (*p == '0') {
            d = 0;
            p++;
        } else if (!parse_long(&p, &d) || d >= MAX_DEVICES) {
            return false;
        }
        if (*p++ != '.')
            return false;
        r->device = (int)d;
    }
    const char *at = strchr(p, '@');
    if (!at)
        return false;
    int point = -1;
    for (int i = 0; i < EMU_FAULT_POINTS; i++)
        if (strlen(point_names[i]) == (size_t)(at - p) && !strncmp(p, point_names[i], at - p))
            point = i;
    if (point < 0)
        return false;
    r->point = (emu_fault_point)point;
    p = at + 1;
    if (*p == '*') {
        r->first = 1, r->last = LONG_MAX;
        p++;
    } else {
        if (!parse_long(&p, &r->first))
            return false;
        r->last = r->first;
        if (*p == '+') {
            r->last = LONG_MAX;
            p++;
        } else if (*p == '-') {
            p++;
            if (!parse_long(&p, &r->last) || r->last < r->first)
                return false;
        }
    }
    r->sticky = false;
    if (!strcmp(p, ":sticky"))
        r->sticky = true;
    else if (*p)
        return false;
    return true;
}

static bool parse_all(void)
{
    const char *devs = getenv("CLIPPREP_EMU_DEVICES");
    if (devs && devs[0]) {
        char *end;
        long n = strtol(devs, &end, 10);
        if (*end || n < 1 || n > MAX_DEVICES) {
            snprintf(parse_err, sizeof parse_err,
                     "CLIPPREP_EMU_DEVICES: expected 1..%d, got \"%.40s\"", MAX_DEVICES, devs);
            return false;
        }
        n_devices = (int)n;
    }
    const char *spec = getenv("CLIPPREP_EMU_FAULTS");
    for (const char *p = spec ? spec : ""; *p;) {
        size_t len = strcspn(p, ",");
        if (n_rules == MAX_RULES || !parse_rule(p, len, &rules[n_rules])) {
            snprintf(parse_err, sizeof parse_err,
                     "CLIPPREP_EMU_FAULTS: bad rule \"%.*s\" (expected [devD.]"
                     "check|launch|copy|wait|direct@N|N-M|N+|*[:sticky], at most %d)",
                     (int)(len > 60 ? 60 : len), p, MAX_RULES);
            return false;
        }
        n_rules++;
        p += len;
        if (*p == ',')
            p++;
    }
    return true;
}

bool emu_faults_init(char *err, size_t err_cap)
{
    pthread_mutex_lock(&mu);
    if (!parsed) {
        parse_ok = parse_all();
        parsed = true;
    }
    bool ok = parse_ok;
    pthread_mutex_unlock(&mu);
    if (!ok && err && err_cap)
        snprintf(err, err_cap, "%s", parse_err);
    return ok;
}

int emu_device_count(void) { return n_devices; }

bool emu_fault(int device, emu_fault_point point, char *err, size_t err_cap)
{
    if (device < 0 || device >= MAX_DEVICES)
        device = 0;
    pthread_mutex_lock(&mu);
    long call = ++calls[device][point];
    bool was_lost = lost[device], fire = false, sticky = false;
    for (int i = 0; i < n_rules && !was_lost; i++) {
        const fault_rule *r = &rules[i];
        if ((r->device < 0 || r->device == device) && r->point == point && call >= r->first &&
            call <= r->last) {
            fire = true;
            sticky = sticky || r->sticky;
        }
    }
    if (sticky)
        lost[device] = true;
    pthread_mutex_unlock(&mu);
    if (was_lost)
        snprintf(err, err_cap, "%s: an illegal memory access was encountered (emulated: "
                 "device %d lost to an earlier sticky fault)", point_names[point], device);
    else if (fire)
        snprintf(err, err_cap, "%s: %s (emulated %s fault, call %ld on device %d)",
                 point_names[point],
                 point == EMU_FAULT_CHECK ? "no kernel image is available for execution on the "
                                            "device"
                 : sticky ? "an illegal memory access was encountered"
                          : "invalid argument",
                 sticky ? "sticky" : "non-sticky", call, device);
    return was_lost || fire;
}

bool emu_device_lost(int device)
{
    if (device < 0 || device >= MAX_DEVICES)
        return false;
    pthread_mutex_lock(&mu);
    bool l = lost[device];
    pthread_mutex_unlock(&mu);
    return l;
}

#else
typedef int emu_faults_unused; /* ISO C: a translation unit must not be empty */
#endif
