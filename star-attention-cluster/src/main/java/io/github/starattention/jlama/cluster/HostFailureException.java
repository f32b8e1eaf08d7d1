package io.github.starattention.jlama.cluster;

/**
 * A context host could not serve a request: it left the cluster, did not answer in time, could not be reached, no
 * longer holds the context, or reported an error. The message names the host and what was lost.
 */
public final class HostFailureException extends RuntimeException {

    /** What went wrong. */
    public enum Kind {
        /** The host left the cluster (Hazelcast removed it, or it was never there). */
        LOST(true),
        /** No reply within the configured timeout. */
        TIMEOUT(true),
        /** The event bus could not deliver the request (connection refused, TLS handshake failed). */
        UNREACHABLE(true),
        /** The host does not hold the context (released after idling, or restarted). */
        SESSION_UNKNOWN(true),
        /** The host failed while computing. */
        REMOTE_ERROR(true),
        /** The host refused the request (full, or the request is invalid); another host may accept it. */
        REJECTED(false);

        private final boolean hostProblem;

        Kind(boolean hostProblem) {
            this.hostProblem = hostProblem;
        }

        /** Whether moving the host's blocks elsewhere can help. */
        public boolean recoverable() {
            return hostProblem;
        }
    }

    private final Kind kind;
    private final String nodeId;

    public HostFailureException(Kind kind, String nodeId, String message) {
        super(message);
        this.kind = kind;
        this.nodeId = nodeId;
    }

    public HostFailureException(Kind kind, String nodeId, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
        this.nodeId = nodeId;
    }

    public Kind kind() {
        return kind;
    }

    /** Cluster node id of the host. */
    public String nodeId() {
        return nodeId;
    }
}
