/** Task scheduling shared by the CPU kernels: a call's short tasks claimed by the caller and the pool's workers. */
package io.github.starattention.concurrent;
