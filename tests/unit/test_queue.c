/* test_queue.c — dynamic batching: batches form by size, by delay, by preferred size; the
 * queue is bounded; order is kept; close drains. */
#include <pthread.h>
#include <time.h>

#include "../../server/queue.h"
#include "test.h"

static job jobs[64];

static void push(batch_queue *q, int first, int n)
{
    CHECK(queue_reserve(q, n));
    queue_push_reserved(q, &jobs[first], n);
}

TEST(batches_form_by_size_in_order)
{
    batch_queue q;
    CHECK(queue_init(&q, 64, 4, 0, NULL, 0));
    for (int i = 0; i < 10; i++)
        jobs[i].index = i;
    push(&q, 0, 10);
    job *out[16];
    int sizes[3], next = 0, ordered = 1;
    for (int b = 0; b < 3; b++) {
        sizes[b] = queue_pop_batch(&q, out, 16);
        for (int i = 0; i < sizes[b]; i++)
            ordered &= out[i]->index == next++;
    }
    CHECK_EQ_INT(sizes[0], 4);
    CHECK_EQ_INT(sizes[1], 4);
    CHECK_EQ_INT(sizes[2], 2);
    CHECK(ordered);
    CHECK_EQ_INT(queue_depth(&q), 0);
    queue_destroy(&q);
}

TEST(limit_caps_the_batch)
{
    batch_queue q;
    CHECK(queue_init(&q, 64, 8, 0, NULL, 0));
    push(&q, 0, 5);
    job *out[8];
    CHECK_EQ_INT(queue_pop_batch(&q, out, 1), 1);
    CHECK_EQ_INT(queue_pop_batch(&q, out, 8), 4);
    queue_destroy(&q);
}

typedef struct {
    batch_queue *q;
    int first, n;
    int after_ms;
} late_push;

static void *push_later(void *arg)
{
    late_push *lp = arg;
    struct timespec ts = {0, lp->after_ms * 1000000L};
    nanosleep(&ts, NULL);
    push(lp->q, lp->first, lp->n);
    return NULL;
}

TEST(batch_waits_for_company_up_to_the_delay)
{
    batch_queue q;
    CHECK(queue_init(&q, 64, 8, 2000000 /* 2 s */, NULL, 0));
    push(&q, 0, 2);
    pthread_t t;
    late_push lp = {&q, 2, 3, 20};
    pthread_create(&t, NULL, push_later, &lp);
    job *out[8];
    uint64_t t0 = monotonic_ns();
    int n = queue_pop_batch(&q, out, 8);
    uint64_t waited = monotonic_ns() - t0;
    pthread_join(t, NULL);
    CHECK_EQ_INT(n, 5);                     /* the late images joined the batch */
    CHECK(waited >= 1900000000ull);         /* and it was held until the delay passed */
    queue_destroy(&q);
}

TEST(full_batch_does_not_wait_for_the_delay)
{
    batch_queue q;
    CHECK(queue_init(&q, 64, 4, 60000000 /* 60 s */, NULL, 0));
    push(&q, 0, 4);
    job *out[8];
    CHECK_EQ_INT(queue_pop_batch(&q, out, 8), 4); /* would hang for 60 s if it waited */
    queue_destroy(&q);
}

TEST(preferred_size_dispatches_at_once)
{
    batch_queue q;
    int preferred[] = {2, 4};
    CHECK(queue_init(&q, 64, 8, 60000000, preferred, 2));
    push(&q, 0, 3);
    job *out[8];
    CHECK_EQ_INT(queue_pop_batch(&q, out, 8), 2);
    queue_close(&q); /* the remaining one goes out when the queue closes */
    CHECK_EQ_INT(queue_pop_batch(&q, out, 8), 1);
    CHECK_EQ_INT(queue_pop_batch(&q, out, 8), 0);
    queue_destroy(&q);
}

TEST(queue_is_bounded)
{
    batch_queue q;
    CHECK(queue_init(&q, 8, 4, 0, NULL, 0));
    CHECK(queue_reserve(&q, 6));
    CHECK(!queue_reserve(&q, 3)); /* 6 + 3 > 8 */
    CHECK(queue_reserve(&q, 2));
    queue_push_reserved(&q, jobs, 6);
    CHECK(!queue_reserve(&q, 1));
    queue_unreserve(&q, 2);
    CHECK(queue_reserve(&q, 2));
    queue_unreserve(&q, 2);
    queue_close(&q);
    CHECK(!queue_reserve(&q, 1)); /* closed: refuses new work */
    queue_destroy(&q);
}

/* The shutdown race (issue #13): a request reserved its places, then the queue closed before
 * it pushed. The workers must take those jobs, not exit and leave the request suspended. */
static batch_queue race_q;
static int race_popped = -1;
static void *race_pop(void *arg)
{
    (void)arg;
    job *out[8];
    race_popped = queue_pop_batch(&race_q, out, 8);
    return NULL;
}

TEST(close_waits_for_reserved_jobs)
{
    CHECK(queue_init(&race_q, 8, 4, 0, NULL, 0));
    CHECK(queue_reserve(&race_q, 1));
    queue_close(&race_q);
    pthread_t t;
    pthread_create(&t, NULL, race_pop, NULL);
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL); /* a worker finding the queue closed and empty now must wait */
    queue_push_reserved(&race_q, jobs, 1);
    pthread_join(t, NULL);
    CHECK_EQ_INT(race_popped, 1);
    job *out[8];
    CHECK_EQ_INT(queue_pop_batch(&race_q, out, 8), 0); /* closed and drained */
    CHECK(!queue_reserve(&race_q, 1)); /* closed: no new reservations */
    queue_destroy(&race_q);
}

int main(void)
{
    RUN(batches_form_by_size_in_order);
    RUN(limit_caps_the_batch);
    RUN(batch_waits_for_company_up_to_the_delay);
    RUN(full_batch_does_not_wait_for_the_delay);
    RUN(preferred_size_dispatches_at_once);
    RUN(queue_is_bounded);
    RUN(close_waits_for_reserved_jobs);
    return TEST_SUMMARY();
}
