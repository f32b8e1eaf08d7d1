package io.github.starattention.samples;

import java.io.PrintWriter;
import java.io.StringWriter;

/** Runs {@code samples/run ARGS} in-process and keeps its exit code, stdout and stderr. */
record SampleRunner(int exitCode, String out, String err) {

    static SampleRunner run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Samples.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
        SampleRunner r = new SampleRunner(code, out.toString(), err.toString());
        System.out.println("samples/run " + String.join(" ", args) + " -> " + code + "\n" + r.out + r.err);
        return r;
    }
}
