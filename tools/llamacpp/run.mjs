// llama.cpp side of `./star-attention bench-llamacpp`: runs llama.cpp (node-llama-cpp's prebuilt CPU binaries) greedily
// on exact prompt token ids and times it inside this process.
//
//   node run.mjs REQUEST.json        or        node run.mjs < REQUEST.json
//
// Request (JSON):
//   {"model": "/path/model.gguf", "prompts": [[1, 2, ...], ...], "newTokens": 32, "threads": 2,
//    "batchSize": 512, "runs": 1, "warmup": [1, 2, ...], "kvType": "F32", "compare": [[5, 6, ...], ...]}
// Optional: "contextSize" (default: each prompt's length + newTokens, rounded up to 256); "kvType", the K and V cache
// type (F32, BF16 or F16, llama.cpp's own default; default here F32); "compare", other greedy outputs per prompt.
//
// Output: one JSON line per run of each prompt (stdout), then {"done": true}. Errors: one line on stderr, exit 1.
// With "compare": where the first run's tokens first differ from compare[p], one more untimed line
// {"check": true, ...} gives llama.cpp's log-probabilities of its token and of the other one there (a near-tie when
// the margin is small: then rounding decides, not a different model).
// The model is loaded once; a short warm-up prompt ("warmup", default the first 64 ids of the first prompt) runs
// first, untimed. Each timed run gets a fresh context and sequence, evaluates all prompt ids and samples greedily
// (temperature 0) until newTokens tokens or an end-of-generation token (not yielded, as our engine does not return it).
// ttft_ms: from the start of the evaluation to the first sampled token (the whole prompt's prefill + one sample);
// decode_tokens_per_s: the tokens after the first, per second after the first.
import fs from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

function readRequest() {
    const arg = process.argv[2];
    const text = arg && arg !== "-" ? fs.readFileSync(arg, "utf8") : fs.readFileSync(0, "utf8");
    const r = JSON.parse(text);
    if (typeof r.model !== "string" || !Array.isArray(r.prompts) || r.prompts.length === 0) {
        throw new Error("the request needs \"model\" (a GGUF path) and \"prompts\" (arrays of token ids)");
    }
    for (const p of r.prompts) {
        if (!Array.isArray(p) || p.length === 0 || !p.every(Number.isInteger)) {
            throw new Error("every prompt must be a non-empty array of integer token ids");
        }
    }
    return {
        model: r.model,
        prompts: r.prompts,
        newTokens: r.newTokens ?? 32,
        threads: r.threads ?? 2,
        batchSize: r.batchSize ?? 512,
        runs: r.runs ?? 1,
        contextSize: r.contextSize,
        kvType: r.kvType ?? "F32",
        compare: r.compare ?? [],
        warmup: r.warmup ?? r.prompts[0].slice(0, 64),
    };
}

function contextSizeFor(req, promptLength) {
    if (req.contextSize) {
        return req.contextSize;
    }
    return Math.ceil((promptLength + req.newTokens + 1) / 256) * 256;
}

function createContext(model, req, length) {
    return model.createContext({
        contextSize: contextSizeFor(req, length),
        batchSize: req.batchSize,
        threads: {ideal: req.threads, min: req.threads},
        sequences: 1,
        experimentalKvCacheKeyType: req.kvType,
        experimentalKvCacheValueType: req.kvType,
    });
}

/** llama.cpp's log-probabilities of its own next token and of `other` after `ids` (untimed). */
async function margin(model, req, ids, own, other) {
    const context = await createContext(model, req, ids.length);
    try {
        const sequence = context.getSequence();
        for await (const r of sequence.evaluateWithMetadata(ids, {probabilities: true}, {temperature: 0})) {
            const p = r.probabilities;
            return {own_logprob: Math.log(p.get(own) ?? 0), other_logprob: Math.log(p.get(other) ?? 0), sampled: r.token};
        }
        return null;
    } finally {
        await context.dispose();
    }
}

async function generate(model, req, ids, newTokens) {
    const context = await createContext(model, req, ids.length);
    try {
        const sequence = context.getSequence();
        const out = [];
        const start = performance.now();
        let first = null;
        for await (const token of sequence.evaluate(ids, {temperature: 0})) {
            if (first === null) {
                first = performance.now();
            }
            out.push(token);
            if (out.length >= newTokens) {
                break;
            }
        }
        const end = performance.now();
        return {
            ids: out,
            ttftMs: (first ?? end) - start,
            decodeTokensPerS: out.length > 1 ? (out.length - 1) / ((end - first) / 1000) : 0,
            contextSize: context.contextSize,
            flashAttention: context.flashAttention,
            threads: context.idealThreads,
            kvType: context.kvCacheKeyType,
        };
    } finally {
        await context.dispose();
    }
}

async function main() {
    const req = readRequest();
    // maxThreads 0: the context's thread count is used as given (no cap from the Llama instance)
    const llama = await getLlama({gpu: false, build: "never", maxThreads: 0, logLevel: LlamaLogLevel.error});
    const loadStart = performance.now();
    const model = await llama.loadModel({modelPath: req.model, gpuLayers: 0});
    const loadMs = performance.now() - loadStart;
    try {
        const warm = await generate(model, req, req.warmup, Math.min(8, req.newTokens));
        const release = llama.llamaCppRelease;
        console.log(JSON.stringify({warmup: true, prompt_tokens: req.warmup.length, ttft_ms: round1(warm.ttftMs),
            load_ms: Math.round(loadMs), llama_cpp: release.release, build: llama.buildType}));
        for (let p = 0; p < req.prompts.length; p++) {
            const ids = req.prompts[p];
            let first = null;
            for (let run = 0; run < req.runs; run++) {
                const g = await generate(model, req, ids, req.newTokens);
                first ??= g.ids;
                console.log(JSON.stringify({
                    engine: "llama.cpp", prompt: p, run, prompt_tokens: ids.length, threads: g.threads,
                    batch_size: req.batchSize, context_size: g.contextSize, flash_attention: g.flashAttention,
                    kv_type: g.kvType, ttft_ms: round1(g.ttftMs), decode_tokens_per_s: round1(g.decodeTokensPerS),
                    generated_ids: g.ids,
                }));
            }
            const other = req.compare[p];
            if (Array.isArray(other)) {
                let k = 0;
                while (k < first.length && k < other.length && first[k] === other[k]) {
                    k++;
                }
                if (k < first.length && k < other.length) {
                    const m = await margin(model, req, [...ids, ...first.slice(0, k)], first[k], other[k]);
                    console.log(JSON.stringify({check: true, prompt: p, first_difference: k, llama_token: first[k],
                        other_token: other[k], ...m, margin_nats: m ? m.own_logprob - m.other_logprob : null}));
                }
            }
        }
        console.log(JSON.stringify({done: true}));
    } finally {
        await model.dispose();
        await llama.dispose();
    }
}

function round1(x) {
    return Math.round(x * 10) / 10;
}

main().catch((e) => {
    console.error("run.mjs: " + (e && e.message ? e.message : String(e)));
    process.exit(1);
});
