/** Rotary position embeddings at explicit position ids, with the scalings Llama-family configs use. */
package io.github.starattention.rope;
