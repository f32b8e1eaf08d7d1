/** KV caches with explicit position ids per token, compact slots, append and rollback. */
package io.github.starattention.kv;
