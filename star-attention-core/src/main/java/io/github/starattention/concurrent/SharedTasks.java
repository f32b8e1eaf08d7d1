package io.github.starattention.concurrent;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;

/**
 * Runs a call's tasks on the calling thread and on the pool workers that wake up in time to claim some, from a shared
 * counter: the caller never waits for a worker to wake up, only for tasks a worker has started. Made for the kernels'
 * short calls (a decode step's products and attention), where waking a worker can take longer than the whole call.
 */
public final class SharedTasks {

    private SharedTasks() {
    }

    /**
     * Runs {@code task.accept(i)} for every {@code i < tasks}, on this thread and on up to {@code helpers} workers of
     * {@code pool}. After a task fails, the tasks not yet started are skipped; the first failure is rethrown once every
     * started task has finished (so no worker still writes into the caller's arrays). An interrupt does not cut the
     * wait short; it is kept for the caller.
     */
    public static void run(Executor pool, int helpers, int tasks, IntConsumer task) {
        AtomicInteger next = new AtomicInteger();
        CountDownLatch done = new CountDownLatch(tasks);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Runnable claim = () -> {
            for (int i = next.getAndIncrement(); i < tasks; i = next.getAndIncrement()) {
                try {
                    if (failure.get() == null) {
                        task.accept(i);
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                } finally {
                    done.countDown();
                }
            }
        };
        for (int h = Math.min(helpers, tasks - 1); h > 0; h--) {
            pool.execute(claim);
        }
        claim.run();
        boolean interrupted = false;
        while (true) {
            try {
                done.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        Throwable t = failure.get();
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        if (t != null) {
            throw new IllegalStateException(t);
        }
    }
}
