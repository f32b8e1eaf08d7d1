/**
 * Star Attention on Jlama: load a model with the Star Attention backend ({@link io.github.starattention.jlama.StarAttentionModel}),
 * prefill a long context once ({@link io.github.starattention.jlama.StarAttentionEngine#prefill}) and ask it questions
 * ({@link io.github.starattention.jlama.ContextSession#generate}).
 */
package io.github.starattention.jlama;
