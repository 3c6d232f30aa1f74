/* log.h — one JSON object per line on stderr: {"time":…,"level":…,"msg":…, extra fields}. */
#ifndef CLIPPREP_LOG_H
#define CLIPPREP_LOG_H

#include <stddef.h>

#include "config.h"

void log_set_level(log_level level);
bool log_enabled(log_level level);

/* fields_fmt: a printf format producing extra JSON members without braces, e.g.
 * "\"port\":%d" — or NULL. Strings from outside must go through json_escape first. */
void log_event(log_level level, const char *msg, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Escapes s as the inside of a JSON string into out (always NUL-terminated, truncated). */
void json_escape(const char *s, char *out, size_t cap);

#endif
