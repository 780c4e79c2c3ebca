/* A tiny persistent worker pool and a spin-then-sleep barrier for fastbp's
 * training epoch (included verbatim by _engine.pyx).
 *
 * Why our own: the epoch is SPMD (every thread walks the same mini-batches
 * and works on its own slice of each layer), with a handful of barriers per
 * batch. OpenBLAS is set to one thread for the duration, so exactly one
 * threading layer is active. A barrier waiter spins for at most
 * FB_SPIN_NS, then sleeps on a condition variable: when the other thread
 * has been descheduled (a busy machine), the waiter gives its core back
 * instead of burning it, so the late thread can run there at once.
 *
 * Worker threads are created on first use and parked on a condition
 * variable between jobs. After fork() the child starts with no workers.
 *
 * Two kinds of job: fb_pool_run's (SPMD: every thread must run it; the
 * caller waits for all) and fb_pool_run_shared's, whose threads take work
 * from a shared queue so that any subset of them finishes it (prediction's
 * chunks). When the caller of a shared job runs out of work it closes the
 * job's gate: a worker that has not joined by then (still waking up, or
 * descheduled by a busy host) skips the job, and the caller waits only for
 * the workers that joined, never for a sleeping one.
 */
#ifndef FASTBP_THREADS_H
#define FASTBP_THREADS_H

#if defined(_WIN32)
#define FB_HAVE_THREADS 0
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#define FB_HAVE_THREADS 1
#include <pthread.h>
#include <sched.h>
#include <time.h>
#endif

/* a monotonic clock in nanoseconds (Ctrl-C checks, the thread tuner, barriers) */
static inline long long fb_now_ns(void) {
#if defined(_WIN32)
    LARGE_INTEGER freq, count;
    QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&count);
    return (long long)((double)count.QuadPart * (1e9 / (double)freq.QuadPart));
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
#endif
}

#define FB_MAX_THREADS 64
#define FB_SPIN_NS 40000LL      /* spin this long at a barrier before sleeping */
#define FB_PARK_SPIN_NS 200000LL /* workers spin this long for the next job */

typedef void (*fb_task_fn)(void *arg, int tid, int nthreads);

#if FB_HAVE_THREADS

/* the previous value of *counter, which goes up by one (shared work queues) */
static inline long fb_fetch_add(long *counter) {
    return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

static inline void fb_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

typedef struct {
    int n;                  /* participants */
    int count;              /* arrivals in this round (atomic) */
    int generation;         /* bumped when a round completes (atomic) */
    int sleepers;           /* threads blocked in cond_wait (atomic) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} fb_barrier;

static void fb_barrier_init(fb_barrier *b, int n) {
    b->n = n;
    b->count = 0;
    b->generation = 0;
    b->sleepers = 0;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
}

static void fb_barrier_destroy(fb_barrier *b) {
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
}

static void fb_barrier_wait(fb_barrier *b) {
    int gen, i;
    long long t0;
    if (b->n <= 1) return;
    gen = __atomic_load_n(&b->generation, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == b->n) {
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        __atomic_add_fetch(&b->generation, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&b->sleepers, __ATOMIC_SEQ_CST) > 0) {
            pthread_mutex_lock(&b->mu);
            pthread_cond_broadcast(&b->cv);
            pthread_mutex_unlock(&b->mu);
        }
        return;
    }
    t0 = fb_now_ns();
    for (;;) {
        for (i = 0; i < 64; i++) {
            if (__atomic_load_n(&b->generation, __ATOMIC_ACQUIRE) != gen) return;
            fb_cpu_relax();
        }
        if (fb_now_ns() - t0 > FB_SPIN_NS) break;
    }
    pthread_mutex_lock(&b->mu);
    __atomic_add_fetch(&b->sleepers, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&b->generation, __ATOMIC_SEQ_CST) == gen)
        pthread_cond_wait(&b->cv, &b->mu);
    __atomic_sub_fetch(&b->sleepers, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&b->mu);
}

/* ---- the pool ---------------------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;       /* guards job hand-over and sleeping */
    pthread_cond_t cv_job;    /* workers wait here for a job */
    pthread_cond_t cv_done;   /* the caller waits here for the workers */
    int n_workers;            /* created workers */
    long long job_word;       /* (job number << 9) | FB_JOB_SHARED for a shared
                                 job | threads taking part (atomic): one word,
                                 so a worker reads a job's number, kind and
                                 thread count together */
    long long gate;           /* a shared job's (number << 32) | FB_GATE_CLOSED
                                 once closed | workers that joined (atomic) */
    int finished;             /* workers done with the job (atomic) */
    int sleepers;             /* workers asleep on cv_job (atomic) */
    int caller_sleeping;
    fb_task_fn fn;
    void *arg;
    pthread_t tids[FB_MAX_THREADS];
    long long start_word[FB_MAX_THREADS]; /* job_word when worker tid was created */
} fb_pool_t;

#define FB_JOB_SHARED 0x100LL
#define FB_GATE_CLOSED 0x80000000LL
#define FB_GATE_JOB(word) ((((word) >> 9) & 0x7fffffffLL) << 32)

static fb_pool_t fb_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                            PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0, NULL, NULL};
static pthread_mutex_t fb_pool_call = PTHREAD_MUTEX_INITIALIZER;  /* one job at a time */
static int fb_atfork_set = 0;

/* Join the shared job ``word`` unless its caller has closed it (or moved on
 * to a later job); 1 when joined: the caller then waits for this worker. */
static int fb_join_shared(long long word) {
    long long job = FB_GATE_JOB(word);
    long long g = __atomic_load_n(&fb_pool.gate, __ATOMIC_SEQ_CST);
    for (;;) {
        if ((g & ~0xffffffffLL) != job || (g & FB_GATE_CLOSED)) return 0;
        if (__atomic_compare_exchange_n(&fb_pool.gate, &g, g + 1, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            return 1;
    }
}

static void *fb_worker_main(void *p) {
    int tid = (int)(long)p;
    int i, n;
    /* the jobs posted before this worker existed are not its own (after
     * fork() the word still holds the parent's last job) */
    long long seen = fb_pool.start_word[tid], word, t0;
    for (;;) {
        /* wait for a new job: spin a little, then sleep */
        t0 = fb_now_ns();
        for (;;) {
            /* a look after every pause (30 ns on a Zen 3): a small
             * prediction's job lasts a few microseconds */
            for (i = 0; i < 64; i++) {
                word = __atomic_load_n(&fb_pool.job_word, __ATOMIC_ACQUIRE);
                if (word != seen) break;
                fb_cpu_relax();
            }
            if (word != seen) break;
            if (fb_now_ns() - t0 > FB_PARK_SPIN_NS) {
                pthread_mutex_lock(&fb_pool.mu);
                __atomic_add_fetch(&fb_pool.sleepers, 1, __ATOMIC_SEQ_CST);
                while ((word = __atomic_load_n(&fb_pool.job_word, __ATOMIC_SEQ_CST)) == seen)
                    pthread_cond_wait(&fb_pool.cv_job, &fb_pool.mu);
                __atomic_sub_fetch(&fb_pool.sleepers, 1, __ATOMIC_SEQ_CST);
                pthread_mutex_unlock(&fb_pool.mu);
                break;
            }
        }
        seen = word;
        /* the thread count comes with the job's number: a worker left out of
         * one job that reads the next job's count late would otherwise run
         * the next job twice (a second run waits at its barrier forever) */
        n = (int)(word & 0xff);
        if (tid < n && (!(word & FB_JOB_SHARED) || fb_join_shared(word))) {
            /* fn and arg stay this job's until this worker is done with it */
            fb_pool.fn(fb_pool.arg, tid, n);
            __atomic_add_fetch(&fb_pool.finished, 1, __ATOMIC_SEQ_CST);
            pthread_mutex_lock(&fb_pool.mu);
            if (fb_pool.caller_sleeping) pthread_cond_signal(&fb_pool.cv_done);
            pthread_mutex_unlock(&fb_pool.mu);
        }
    }
    return NULL;
}

static void fb_after_fork_child(void) {
    /* the child has no workers; start over */
    pthread_mutex_init(&fb_pool.mu, NULL);
    pthread_cond_init(&fb_pool.cv_job, NULL);
    pthread_cond_init(&fb_pool.cv_done, NULL);
    pthread_mutex_init(&fb_pool_call, NULL);
    fb_pool.n_workers = 0;
    fb_pool.sleepers = 0;
    fb_pool.gate = 0;
    fb_pool.finished = 0;
    fb_pool.caller_sleeping = 0;
}

/* Start workers up to n - 1; returns the number of threads available (>= 1). */
static int fb_pool_ensure(int n) {
    pthread_attr_t attr;
    if (n > FB_MAX_THREADS) n = FB_MAX_THREADS;
    if (!fb_atfork_set) {
        pthread_atfork(NULL, NULL, fb_after_fork_child);
        fb_atfork_set = 1;
    }
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    while (fb_pool.n_workers < n - 1) {
        int tid = fb_pool.n_workers + 1;
        fb_pool.start_word[tid] = fb_pool.job_word;
        if (pthread_create(&fb_pool.tids[tid], &attr, fb_worker_main, (void *)(long)tid) != 0)
            break;
        fb_pool.n_workers++;
    }
    pthread_attr_destroy(&attr);
    return fb_pool.n_workers + 1;
}

/* Post fn(arg, tid, n) as a job of ``kind`` (0 or FB_JOB_SHARED) for up to n
 * threads; returns the threads the pool has for it. Above 1 the job is
 * posted and fb_pool_call held until fb_pool_wait; at 1 nothing is posted
 * and the caller runs fn alone. */
static int fb_pool_post(fb_task_fn fn, void *arg, int n, long long kind) {
    long long word;
    int i;
    if (n <= 1) return 1;
    pthread_mutex_lock(&fb_pool_call);
    i = fb_pool_ensure(n);
    if (i < n) n = i;
    if (n <= 1) { pthread_mutex_unlock(&fb_pool_call); return 1; }
    fb_pool.fn = fn;
    fb_pool.arg = arg;
    word = ((fb_pool.job_word >> 9) + 1) << 9 | kind | n;
    __atomic_store_n(&fb_pool.finished, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&fb_pool.gate, FB_GATE_JOB(word), __ATOMIC_SEQ_CST);
    __atomic_store_n(&fb_pool.job_word, word, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&fb_pool.sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&fb_pool.mu);
        pthread_cond_broadcast(&fb_pool.cv_job);
        pthread_mutex_unlock(&fb_pool.mu);
    }
    return n;
}

/* Wait (spin, then sleep) until ``workers`` workers have finished the posted
 * job, then let the next job be posted. */
static void fb_pool_wait(int workers) {
    long long t0 = fb_now_ns();
    int i;
    while (__atomic_load_n(&fb_pool.finished, __ATOMIC_SEQ_CST) < workers) {
        for (i = 0; i < 64 && __atomic_load_n(&fb_pool.finished, __ATOMIC_ACQUIRE) < workers; i++)
            fb_cpu_relax();
        if (fb_now_ns() - t0 > FB_SPIN_NS) {
            pthread_mutex_lock(&fb_pool.mu);
            fb_pool.caller_sleeping = 1;
            while (__atomic_load_n(&fb_pool.finished, __ATOMIC_SEQ_CST) < workers)
                pthread_cond_wait(&fb_pool.cv_done, &fb_pool.mu);
            fb_pool.caller_sleeping = 0;
            pthread_mutex_unlock(&fb_pool.mu);
            break;
        }
    }
    pthread_mutex_unlock(&fb_pool_call);
}

/* Take a piece of shared work marked by *flag (0: free): 1 for the one
 * thread that takes it. */
static int fb_claim(int *flag) {
    int free_ = 0;
    return __atomic_compare_exchange_n(flag, &free_, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* *counter += 1, publishing what this thread wrote before. */
static void fb_count_done(int *counter) {
    __atomic_add_fetch(counter, 1, __ATOMIC_RELEASE);
}

/* Wait until *counter >= value (then what was written before each count is
 * visible): spin, then, with limit_ns < 0, give the core away between looks
 * (the count will come: the work is taken); with limit_ns >= 0, give up
 * after that long and return 0. */
static int fb_wait_count(const int *counter, int value, long long limit_ns) {
    long long t0 = fb_now_ns();
    int i;
    while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) < value) {
        for (i = 0; i < 64 && __atomic_load_n(counter, __ATOMIC_ACQUIRE) < value; i++)
            fb_cpu_relax();
        if (fb_now_ns() - t0 > (limit_ns >= 0 ? limit_ns : FB_SPIN_NS)) {
            if (limit_ns >= 0) return 0;
            sched_yield();
        }
    }
    return 1;
}

/* Run fn(arg, tid, n) on n threads (the caller is tid 0) and wait for all. */
static void fb_pool_run(fb_task_fn fn, void *arg, int n) {
    n = fb_pool_post(fn, arg, n, 0);
    fn(arg, 0, n);
    if (n > 1) fb_pool_wait(n - 1);
}

/* Run a shared job: fn(arg, tid, n) takes work from a queue in arg until
 * none is left, on the caller (tid 0) and on whichever of the n - 1 workers
 * join before the caller runs out of work; waits for those only. */
static void fb_pool_run_shared(fb_task_fn fn, void *arg, int n) {
    n = fb_pool_post(fn, arg, n, FB_JOB_SHARED);
    fn(arg, 0, n);
    if (n > 1)
        fb_pool_wait((int)(__atomic_fetch_or(&fb_pool.gate, FB_GATE_CLOSED, __ATOMIC_SEQ_CST)
                           & 0x7fffffffLL));
}

#else  /* no threads: everything runs on the caller */

typedef struct { int n; } fb_barrier;
static inline long fb_fetch_add(long *counter) { return (*counter)++; }
static void fb_barrier_init(fb_barrier *b, int n) { b->n = 1; }
static void fb_barrier_destroy(fb_barrier *b) {}
static void fb_barrier_wait(fb_barrier *b) {}
static int fb_pool_ensure(int n) { return 1; }
static void fb_pool_run(fb_task_fn fn, void *arg, int n) { fn(arg, 0, 1); }
static void fb_pool_run_shared(fb_task_fn fn, void *arg, int n) { fn(arg, 0, 1); }
static int fb_claim(int *flag) { if (*flag) return 0; *flag = 1; return 1; }
static void fb_count_done(int *counter) { (*counter)++; }
static int fb_wait_count(const int *counter, int value, long long limit_ns) {
    return *counter >= value;
}

#endif
#endif
