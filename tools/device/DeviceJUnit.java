import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;

import java.io.PrintWriter;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;

/**
 * Runs JUnit 5 test classes on a machine without Maven (the GPU machine): {@code java -cp ... DeviceJUnit CLASS...}.
 * Prints one line per test and the summary; exits 1 when a test failed.
 */
public class DeviceJUnit {
    public static void main(String[] args) throws Exception {
        LauncherDiscoveryRequestBuilder b = LauncherDiscoveryRequestBuilder.request();
        for (String c : args) b.selectors(selectClass(Class.forName(c)));
        LauncherDiscoveryRequest req = b.build();
        Launcher launcher = LauncherFactory.create();
        SummaryGeneratingListener summary = new SummaryGeneratingListener();
        TestExecutionListener log = new TestExecutionListener() {
            public void executionFinished(TestIdentifier id, TestExecutionResult r) {
                if (id.isTest() || r.getStatus() != TestExecutionResult.Status.SUCCESSFUL)
                    System.out.println("[junit] " + r.getStatus() + " " + id.getDisplayName()
                        + r.getThrowable().map(t -> " :: " + t).orElse(""));
            }
            public void executionSkipped(TestIdentifier id, String reason) {
                System.out.println("[junit] SKIPPED " + id.getDisplayName() + " :: " + reason);
            }
        };
        launcher.execute(req, summary, log);
        summary.getSummary().printTo(new PrintWriter(System.out));
        summary.getSummary().printFailuresTo(new PrintWriter(System.out), 30);
        System.exit(summary.getSummary().getTotalFailureCount() == 0 ? 0 : 1);
    }
}
