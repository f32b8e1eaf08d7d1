package io.github.starattention.jlama.eval;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The outcome of one example in one variant: a line of {@code results.jsonl}.
 *
 * @param id example id
 * @param task task
 * @param length nominal length (from the set)
 * @param mode {@code global} or {@code star}
 * @param variant the variant's label ({@code global}, {@code star}, {@code star anchor=0.25})
 * @param setting the sweep setting, null outside sweeps
 * @param output the generated text
 * @param score string_match_all in [0, 1] (0 when {@code error} is set)
 * @param ttftMs time to first token: context prefill + query prefill + first sample
 * @param prefillMs context prefill alone (phase 1)
 * @param decodeTokensPerS output tokens after the first, per second
 * @param contextTokens context tokens (BOS included)
 * @param queryTokens query tokens
 * @param outputTokens generated tokens (end of sequence not counted)
 * @param maxNewTokens the cap that applied
 * @param finishReason {@code stop}, {@code length} or {@code cancelled}
 * @param blocks number of context blocks (1 in global mode)
 * @param blockSize block size in tokens (the context in global mode)
 * @param anchorSize anchor size in tokens (0 in global mode or without anchor)
 * @param error what went wrong, null when the example ran
 * @param hosts context hosts the context was spread over, the query host not counted: 0 in process ({@code eval
 *     --hosts N} runs star on N, global in process)
 */
public record EvalResult(String id, String task, int length, String mode, String variant, String setting, String output,
                         double score, double ttftMs, double prefillMs, double decodeTokensPerS, int contextTokens,
                         int queryTokens, int outputTokens, int maxNewTokens, String finishReason, int blocks,
                         int blockSize, int anchorSize, String error, int hosts) {

    /** A result of an in-process run ({@code hosts} 0). */
    public EvalResult(String id, String task, int length, String mode, String variant, String setting, String output,
                      double score, double ttftMs, double prefillMs, double decodeTokensPerS, int contextTokens,
                      int queryTokens, int outputTokens, int maxNewTokens, String finishReason, int blocks,
                      int blockSize, int anchorSize, String error) {
        this(id, task, length, mode, variant, setting, output, score, ttftMs, prefillMs, decodeTokensPerS, contextTokens,
                queryTokens, outputTokens, maxNewTokens, finishReason, blocks, blockSize, anchorSize, error, 0);
    }

    /** Whether the example failed to run. */
    public boolean failed() {
        return error != null;
    }

    /** The key a resumed run uses to skip finished work. */
    public String key() {
        return id + "\u0000" + variant;
    }

    /** The JSON object written to {@code results.jsonl}. */
    public Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", id);
        m.put("task", task);
        m.put("length", length);
        m.put("mode", mode);
        if (!variant.equals(mode)) {
            m.put("variant", variant);
        }
        if (setting != null) {
            m.put("setting", setting);
        }
        m.put("output", output);
        m.put("score", score);
        m.put("ttft_ms", round1(ttftMs));
        m.put("prefill_ms", round1(prefillMs));
        m.put("decode_tokens_per_s", round1(decodeTokensPerS));
        m.put("context_tokens", contextTokens);
        m.put("query_tokens", queryTokens);
        m.put("output_tokens", outputTokens);
        m.put("max_new_tokens", maxNewTokens);
        m.put("finish_reason", finishReason);
        m.put("blocks", blocks);
        m.put("block_size", blockSize);
        m.put("anchor_size", anchorSize);
        m.put("hosts", hosts);
        if (error != null) {
            m.put("error", error);
        }
        return m;
    }

    /** Reads a line of {@code results.jsonl} back. */
    public static EvalResult fromJson(JsonNode n) {
        String mode = n.path("mode").asText();
        return new EvalResult(n.path("id").asText(), n.path("task").asText(), n.path("length").asInt(), mode,
                n.path("variant").asText(mode), n.hasNonNull("setting") ? n.get("setting").asText() : null,
                n.path("output").asText(""), n.path("score").asDouble(), n.path("ttft_ms").asDouble(),
                n.path("prefill_ms").asDouble(), n.path("decode_tokens_per_s").asDouble(),
                n.path("context_tokens").asInt(), n.path("query_tokens").asInt(), n.path("output_tokens").asInt(),
                n.path("max_new_tokens").asInt(), n.path("finish_reason").asText(""), n.path("blocks").asInt(),
                n.path("block_size").asInt(), n.path("anchor_size").asInt(),
                n.hasNonNull("error") ? n.get("error").asText() : null, n.path("hosts").asInt(0));
    }

    static double round1(double v) {
        return Math.round(v * 10) / 10.0;
    }
}
