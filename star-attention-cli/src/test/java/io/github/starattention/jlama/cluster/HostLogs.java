package io.github.starattention.jlama.cluster;

import io.github.starattention.jlama.cli.LocalCluster;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestWatcher;

/** Prints the end of every local host's log when a test fails. */
final class HostLogs implements TestWatcher {

    static volatile LocalCluster cluster;

    @Override
    public void testFailed(ExtensionContext context, Throwable cause) {
        LocalCluster c = cluster;
        if (c != null) {
            for (int i = 0; i < c.size(); i++) {
                System.err.println("---- end of host-" + i + " log (" + c.log(i) + ")\n" + c.logTail(i, 40));
            }
        }
    }
}
