package io.github.starattention.wire;

import io.github.starattention.attention.AttentionQuery;
import io.github.starattention.attention.PartialAttention;
import io.github.starattention.plan.Block;
import io.github.starattention.plan.BlockPlan;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.UUID;
import java.util.stream.IntStream;

/**
 * The messages of distributed Star Attention. The query host sends requests to one context host each; the host
 * answers with the matching reply (or a failure with a code and a message, which the transport carries).
 *
 * <p>Per phase-2 step, the query host sends one {@link AttendRequest} per context host and layer carrying all the
 * step's tokens (the whole query during query prefill, one token while decoding); the host answers with one
 * {@link AttendReply} holding one {@link PartialAttention} per requested block, in the requested order.
 */
public sealed interface WireMessage {

    byte INFO_REQUEST = 1;
    byte HOST_INFO = 2;
    byte PREFILL_REQUEST = 3;
    byte PREFILL_REPLY = 4;
    byte ATTEND_REQUEST = 5;
    byte ATTEND_REPLY = 6;
    byte RELEASE_REQUEST = 7;
    byte RELEASE_REPLY = 8;
    byte ANCHOR_REQUEST = 9;
    byte ANCHOR_REPLY = 10;
    byte PASSED_REQUEST = 11;
    byte PASSED_REPLY = 12;

    /** The message type byte of the frame header. */
    byte type();

    /** Asks a context host who it is and what it serves. */
    record InfoRequest() implements WireMessage {
        @Override
        public byte type() {
            return INFO_REQUEST;
        }
    }

    /**
     * A context host's identity and load.
     *
     * @param nodeId cluster node id (the Hazelcast member UUID)
     * @param name display name from the host's configuration
     * @param modelId fingerprint of the model it serves; the query host uses only hosts whose id equals its own
     * @param kernel attention kernel name, e.g. {@code cpu}
     * @param threads worker threads
     * @param sessions contexts held now
     * @param kvBytes bytes of KV held now
     */
    record HostInfo(String nodeId, String name, String modelId, String kernel, int threads, int sessions, long kvBytes)
            implements WireMessage {
        public HostInfo {
            Objects.requireNonNull(nodeId, "nodeId");
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(modelId, "modelId");
            Objects.requireNonNull(kernel, "kernel");
        }

        @Override
        public byte type() {
            return HOST_INFO;
        }
    }

    /**
     * Phase 1 on a context host: encode {@code blocks} of the plan {@code (contextLength, blockSize, anchorSize,
     * hosts)} and keep their KV under {@code session}. Blocks may be added to an existing session (a block taken over
     * from a host that failed). The request carries only the tokens the host needs: those of its blocks and, when one
     * of them is not block 0, the anchor's ({@link #of} cuts them out of the context).
     *
     * @param session context session id
     * @param owner node id of the query host; the context host drops the session when that node leaves
     * @param contextLength tokens in the whole context
     * @param contextDigest identifies the whole context ({@link #digest}): later requests for the same session must
     *     carry the same
     * @param blockSize block size of the plan
     * @param anchorSize anchor size of the plan
     * @param hosts hosts of the plan
     * @param blocks indices of the blocks to encode, increasing
     * @param ranges the context ranges sent, as {@code [start, end)} pairs, increasing and disjoint
     * @param tokens the tokens of {@code ranges}, concatenated
     * @param anchorFrom node id of the host that encodes block 0 of this session and serves its anchor's KV
     *     ({@link AnchorRequest}); empty to encode the anchor here
     * @param passing phase-1 passing blocks ({@link Passing#NONE}: the paper's phase 1)
     */
    record PrefillRequest(UUID session, String owner, int contextLength, long contextDigest, int blockSize,
                          int anchorSize, int hosts, int[] blocks, int[] ranges, int[] tokens, String anchorFrom,
                          Passing passing) implements WireMessage {

        /**
         * Passing blocks in phase 1: each block passes the K/V of {@code tokensPerBlock} of its tokens on to the later
         * blocks, chosen by {@code selection} ({@code window} or {@code spread}) from the attention mass of its first
         * {@code scoredLayers} layers; a host takes what a block it does not encode passes from {@code holders[block]}
         * ({@link PassedRequest}), the node id of the host encoding it (empty: not a context host). With passing,
         * the request carries every token up to its last block, so that a host can encode the earlier blocks itself.
         */
        public record Passing(int tokensPerBlock, String selection, int scoredLayers, List<String> holders) {

            /** Nothing passed. */
            public static final Passing NONE = new Passing(0, "window", 1, List.of());

            public Passing {
                Objects.requireNonNull(selection, "selection");
                holders = List.copyOf(holders);
                if (tokensPerBlock < 0 || scoredLayers < 1) {
                    throw new IllegalArgumentException("passing " + tokensPerBlock + " tokens per block scored on "
                            + scoredLayers + " layers");
                }
            }

            public boolean enabled() {
                return tokensPerBlock > 0;
            }
        }

        /** A request without passing blocks. */
        public PrefillRequest(UUID session, String owner, int contextLength, long contextDigest, int blockSize,
                              int anchorSize, int hosts, int[] blocks, int[] ranges, int[] tokens, String anchorFrom) {
            this(session, owner, contextLength, contextDigest, blockSize, anchorSize, hosts, blocks, ranges, tokens,
                    anchorFrom, Passing.NONE);
        }

        public PrefillRequest {
            Objects.requireNonNull(passing, "passing");
            Objects.requireNonNull(session, "session");
            Objects.requireNonNull(owner, "owner");
            Objects.requireNonNull(blocks, "blocks");
            Objects.requireNonNull(ranges, "ranges");
            Objects.requireNonNull(tokens, "tokens");
            Objects.requireNonNull(anchorFrom, "anchorFrom");
            if (contextLength < 1) {
                throw new IllegalArgumentException("context length must be positive, got " + contextLength);
            }
            if (ranges.length % 2 != 0) {
                throw new IllegalArgumentException("ranges must be [start, end) pairs, got " + ranges.length + " ints");
            }
            long sent = 0;
            int prevEnd = 0;
            for (int i = 0; i < ranges.length; i += 2) {
                if (ranges[i] < prevEnd || ranges[i] >= ranges[i + 1] || ranges[i + 1] > contextLength) {
                    throw new IllegalArgumentException("range [" + ranges[i] + ", " + ranges[i + 1] + ") is not "
                            + "increasing, disjoint and inside the " + contextLength + "-token context");
                }
                sent += ranges[i + 1] - ranges[i];
                prevEnd = ranges[i + 1];
            }
            if (sent != tokens.length) {
                throw new IllegalArgumentException("ranges cover " + sent + " tokens, " + tokens.length + " sent");
            }
        }

        /**
         * The request for {@code blocks} of {@code plan}, with the tokens they need cut from {@code context}: each
         * block's own and, for a block other than 0 when the plan has an anchor, the anchor's {@code [0, a)}.
         */
        public static PrefillRequest of(UUID session, String owner, BlockPlan plan, int[] context, int[] blocks,
                                        String anchorFrom) {
            return of(session, owner, plan, context, blocks, anchorFrom, Passing.NONE);
        }

        /** As above with passing blocks; then the tokens sent are all those before the last block's end. */
        public static PrefillRequest of(UUID session, String owner, BlockPlan plan, int[] context, int[] blocks,
                                        String anchorFrom, Passing passing) {
            if (context.length != plan.contextLength()) {
                throw new IllegalArgumentException("the context has " + context.length + " tokens, the plan "
                        + plan.contextLength());
            }
            // spans in context order: the anchor [0, a) when a block after the first needs it, then each block
            List<int[]> spans = new ArrayList<>();
            if (plan.blockCount() > 1 && plan.effectiveAnchor() > 0 && IntStream.of(blocks).anyMatch(b -> b > 0)) {
                spans.add(new int[] {0, plan.effectiveAnchor()});
            }
            if (passing.enabled() && blocks.length > 0) {
                spans.add(new int[] {0, plan.blocks().get(IntStream.of(blocks).max().getAsInt()).end()});
            }
            for (int b : blocks) {
                Block block = plan.blocks().get(b);
                spans.add(new int[] {block.start(), block.end()});
            }
            spans.sort(Comparator.comparingInt((int[] r) -> r[0]));
            int[] merged = new int[2 * spans.size()];
            int n = 0;
            int count = 0;
            for (int[] r : spans) {
                if (n > 0 && r[0] <= merged[n - 1]) { // touches or overlaps the previous range
                    count += Math.max(0, r[1] - merged[n - 1]);
                    merged[n - 1] = Math.max(merged[n - 1], r[1]);
                } else {
                    merged[n++] = r[0];
                    merged[n++] = r[1];
                    count += r[1] - r[0];
                }
            }
            int[] ranges = Arrays.copyOf(merged, n);
            int[] tokens = new int[count];
            int at = 0;
            for (int i = 0; i < n; i += 2) {
                System.arraycopy(context, ranges[i], tokens, at, ranges[i + 1] - ranges[i]);
                at += ranges[i + 1] - ranges[i];
            }
            return new PrefillRequest(session, owner, plan.contextLength(), digest(context), plan.blockSize(),
                    plan.anchorSize(), plan.hosts(), blocks, ranges, tokens, anchorFrom, passing);
        }

        /** A 64-bit FNV-1a hash of {@code context}'s token ids: which context a session holds. */
        public static long digest(int[] context) {
            long h = 0xcbf29ce484222325L;
            for (int t : context) {
                for (int k = 0; k < 4; k++) {
                    h ^= (t >>> (8 * k)) & 0xff;
                    h *= 0x100000001b3L;
                }
            }
            return h ^ context.length;
        }

        /** Whether the sent ranges cover {@code [start, end)}. */
        public boolean covers(int start, int end) {
            for (int i = 0; i < ranges.length; i += 2) {
                if (ranges[i] <= start && end <= ranges[i + 1]) {
                    return true;
                }
            }
            return start >= end;
        }

        /** The context with the sent tokens in place and 0 elsewhere (positions a host has no business reading). */
        public int[] scatter() {
            int[] full = new int[contextLength];
            int n = 0;
            for (int i = 0; i < ranges.length; i += 2) {
                System.arraycopy(tokens, n, full, ranges[i], ranges[i + 1] - ranges[i]);
                n += ranges[i + 1] - ranges[i];
            }
            return full;
        }

        @Override
        public byte type() {
            return PREFILL_REQUEST;
        }
    }

    /** Phase 1 done: the blocks now held for {@code session}, the session's KV bytes on that host, the time taken. */
    record PrefillReply(UUID session, int[] blocks, long kvBytes, long nanos) implements WireMessage {
        public PrefillReply {
            Objects.requireNonNull(session, "session");
            Objects.requireNonNull(blocks, "blocks");
        }

        @Override
        public byte type() {
            return PREFILL_REPLY;
        }
    }

    /**
     * One phase-2 layer step: the partial attention of {@code query} (post-RoPE) over each of {@code blocks} at
     * {@code layer}.
     */
    record AttendRequest(UUID session, int layer, int[] blocks, AttentionQuery query) implements WireMessage {
        public AttendRequest {
            Objects.requireNonNull(session, "session");
            Objects.requireNonNull(blocks, "blocks");
            Objects.requireNonNull(query, "query");
        }

        @Override
        public byte type() {
            return ATTEND_REQUEST;
        }
    }

    /** The partials of an {@link AttendRequest}, one per requested block in request order, and the host's time. */
    record AttendReply(long hostNanos, List<PartialAttention> partials) implements WireMessage {
        public AttendReply {
            partials = List.copyOf(partials);
        }

        @Override
        public byte type() {
            return ATTEND_REPLY;
        }
    }

    /** Frees a session's KV on a context host. Releasing an unknown session is not an error. */
    record ReleaseRequest(UUID session) implements WireMessage {
        public ReleaseRequest {
            Objects.requireNonNull(session, "session");
        }

        @Override
        public byte type() {
            return RELEASE_REQUEST;
        }
    }

    /** Bytes freed by a {@link ReleaseRequest} and the sessions the host still holds. */
    record ReleaseReply(long freedBytes, int sessions) implements WireMessage {
        @Override
        public byte type() {
            return RELEASE_REPLY;
        }
    }

    /**
     * Asks the host encoding block 0 of {@code session} for the anchor's K and V at {@code layer}. It answers once
     * that layer is encoded (a request may arrive before the host's own prefill request), so a host encoding a later
     * block waits for each layer only as long as block 0's host takes to get there.
     */
    record AnchorRequest(UUID session, int layer) implements WireMessage {
        public AnchorRequest {
            Objects.requireNonNull(session, "session");
        }

        @Override
        public byte type() {
            return ANCHOR_REQUEST;
        }
    }

    /**
     * The anchor's K and V at {@code layer}: {@code tokens} slots at positions {@code 0..tokens-1}, each
     * {@code [tokens][kvHeads][headDim]} fp32, post-RoPE.
     */
    record AnchorReply(int layer, int tokens, int kvHeads, int headDim, float[] k, float[] v) implements WireMessage {
        public AnchorReply {
            Objects.requireNonNull(k, "k");
            Objects.requireNonNull(v, "v");
            long n = (long) tokens * kvHeads * headDim;
            if (k.length != n || v.length != n) {
                throw new IllegalArgumentException("K and V must hold " + tokens + " x " + kvHeads + " x " + headDim
                        + " floats, got " + k.length + " and " + v.length);
            }
        }

        @Override
        public byte type() {
            return ANCHOR_REPLY;
        }
    }

    /**
     * Asks the host encoding {@code block} of {@code session} for what that block passes on at {@code layer} (passing
     * blocks). It answers once the block's K/V of that layer are written (a request may arrive before the host's own
     * prefill request), so a host encoding a later block waits for each layer only as long as that host takes.
     */
    record PassedRequest(UUID session, int block, int layer) implements WireMessage {
        public PassedRequest {
            Objects.requireNonNull(session, "session");
        }

        @Override
        public byte type() {
            return PASSED_REQUEST;
        }
    }

    /**
     * What {@code block} passes on at {@code layer}: the tokens at {@code positions} (increasing), their K and V each
     * {@code [tokens][kvHeads][headDim]} fp32, post-RoPE.
     */
    record PassedReply(int block, int layer, int kvHeads, int headDim, int[] positions, float[] k, float[] v)
            implements WireMessage {
        public PassedReply {
            Objects.requireNonNull(positions, "positions");
            Objects.requireNonNull(k, "k");
            Objects.requireNonNull(v, "v");
            long n = (long) positions.length * kvHeads * headDim;
            if (k.length != n || v.length != n) {
                throw new IllegalArgumentException("K and V must hold " + positions.length + " x " + kvHeads + " x "
                        + headDim + " floats, got " + k.length + " and " + v.length);
            }
        }

        @Override
        public byte type() {
            return PASSED_REPLY;
        }
    }
}
