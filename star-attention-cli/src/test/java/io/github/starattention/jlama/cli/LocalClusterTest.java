package io.github.starattention.jlama.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class LocalClusterTest {

    @Test
    void membersGetDistinctFreePortsOutsideTheEphemeralRange() throws IOException {
        int[] ports = LocalCluster.freePorts(5);
        assertThat(Arrays.stream(ports).distinct()).hasSize(5);
        // outgoing connections take local ports from 32768 up (Linux), so none can take these before the bind
        assertThat(Arrays.stream(ports).boxed()).allSatisfy(p -> assertThat(p)
                .isBetween(LocalCluster.FIRST_PORT, LocalCluster.LAST_PORT - 1).isLessThan(32_768));
        for (int p : ports) {
            try (ServerSocket s = new ServerSocket()) {
                s.bind(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), p));
            }
        }
    }

    @Test
    void aPortInUseIsSkipped() throws IOException {
        int[] first = LocalCluster.freePorts(1);
        try (ServerSocket taken = new ServerSocket()) {
            taken.bind(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), first[0]));
            for (int i = 0; i < 50; i++) {
                assertThat(LocalCluster.freePorts(3)).doesNotContain(first[0]);
            }
        }
    }
}
