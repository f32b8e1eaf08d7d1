package io.github.starattention.jlama.eval;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import javax.imageio.ImageIO;
import java.util.function.ToDoubleFunction;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.XYStyler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * PNG charts of an evaluation, drawn with XChart: accuracy and time to first token against context length per
 * variant, accuracy per task, and for sweeps accuracy and time to first token per setting.
 */
public final class Charts {

    /** File names. */
    public static final String ACCURACY = "accuracy-vs-length.png";
    public static final String TTFT = "ttft-vs-length.png";
    public static final String BY_TASK = "accuracy-by-task.png";

    private static final int WIDTH = 800;
    private static final int HEIGHT = 500;
    private static final Color[] COLORS = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c),
        new Color(0xff7f0e), new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2), new Color(0x7f7f7f)};

    private Charts() {
    }

    /** Writes every chart that applies into {@code dir}; returns the files. */
    public static List<Path> write(EvalSummary s, Path dir) {
        System.setProperty("java.awt.headless", "true");
        List<Path> files = new ArrayList<>();
        if (s.results().stream().noneMatch(r -> !r.failed())) {
            return files;
        }
        try {
            files.add(save(accuracyVsLength(s, null), dir.resolve(ACCURACY)));
            files.add(save(ttftVsLength(s), dir.resolve(TTFT)));
            if (s.tasks().size() > 1) {
                List<XYChart> grid = new ArrayList<>();
                for (String t : s.tasks()) {
                    XYChart c = accuracyVsLength(s, t);
                    grid.add(c);
                }
                files.add(saveGrid(grid, 3, dir.resolve(BY_TASK)));
            }
            if (s.isSweep()) {
                files.add(save(sweep(s), dir.resolve("sweep-" + s.sweepParameter() + ".png")));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write charts to " + dir, e);
        }
        return files;
    }

    /** Accuracy (%) against length, one line per variant; {@code task} null = all tasks. */
    public static XYChart accuracyVsLength(EvalSummary s, String task) {
        XYChart c = lengthChart(s, task == null ? "Accuracy vs context length" : task, "accuracy (%)", task == null ? WIDTH : 420,
                task == null ? HEIGHT : 300);
        c.getStyler().setYAxisMin(0.0).setYAxisMax(100.0);
        for (String v : s.variants()) {
            addLengthSeries(c, s, v, cell -> task == null ? s.byLength(v, cell) : s.at(v, task, cell),
                    cell -> cell.score() * 100);
        }
        return c;
    }

    /** Mean time to first token (s) against length, one line per variant. */
    public static XYChart ttftVsLength(EvalSummary s) {
        XYChart c = lengthChart(s, "Time to first token vs context length", "time to first token (s)", WIDTH, HEIGHT);
        c.getStyler().setYAxisMin(0.0);
        for (String v : s.variants()) {
            addLengthSeries(c, s, v, l -> s.byLength(v, l), cell -> cell.ttftMs() / 1000);
        }
        return c;
    }

    /** Accuracy (left axis) and time to first token (right axis) per sweep setting, with global as a dashed line. */
    public static XYChart sweep(EvalSummary s) {
        List<String> settings = s.variants().stream().filter(v -> v.startsWith("star ")).toList();
        List<String> labels = settings.stream().map(v -> v.substring(v.indexOf('=') + 1)).toList();
        String p = s.sweepParameter();
        String xTitle = switch (p) {
            case "anchor" -> "anchor size (fraction of the block; 0 = no anchor)";
            case "blocks" -> "number of context blocks (1 = global)";
            case "passing" -> "passing blocks: tokens each block passes on (0 = the paper's phase 1)";
            default -> p;
        };
        XYChart c = new XYChartBuilder().width(WIDTH).height(HEIGHT).title("Star Attention " + p + " sweep")
                .xAxisTitle(xTitle).yAxisTitle("accuracy (%)").build();
        style(c);
        c.getStyler().setYAxisMin(0, 0.0).setYAxisMax(0, 100.0).setYAxisMin(1, 0.0);
        c.getStyler().setYAxisGroupPosition(1, Styler.YAxisPosition.Right);
        c.setYAxisGroupTitle(0, "accuracy (%)");
        c.setYAxisGroupTitle(1, "time to first token (s)");
        c.getStyler().setxAxisTickLabelsFormattingFunction(categoryLabels(labels));
        c.getStyler().setXAxisMaxLabelCount(labels.size());
        double[] x = new double[settings.size()];
        double[] acc = new double[settings.size()];
        double[] ttft = new double[settings.size()];
        for (int i = 0; i < settings.size(); i++) {
            x[i] = i;
            acc[i] = s.overall(settings.get(i)).score() * 100;
            ttft[i] = s.overall(settings.get(i)).ttftMs() / 1000;
        }
        c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        c.getStyler().setLegendLayout(Styler.LegendLayout.Horizontal);
        XYSeries a = c.addSeries("star accuracy", x, acc);
        paint(a, SeriesMarkers.CIRCLE, COLORS[1]);
        if (s.variants().contains("global")) {
            double g = s.overall("global").score() * 100;
            double[] gy = new double[x.length];
            java.util.Arrays.fill(gy, g);
            XYSeries gs = c.addSeries("global accuracy", x, gy);
            paint(gs, SeriesMarkers.NONE, COLORS[0]);
            gs.setLineStyle(new BasicStroke(2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[] {6f, 4f}, 0f));
        }
        XYSeries t = c.addSeries("star time to first token", x, ttft);
        t.setYAxisGroup(1);
        paint(t, SeriesMarkers.SQUARE, COLORS[2]);
        return c;
    }

    private static XYChart lengthChart(EvalSummary s, String title, String yTitle, int w, int h) {
        XYChart c = new XYChartBuilder().width(w).height(h).title(title).xAxisTitle("context length (tokens)")
                .yAxisTitle(yTitle).build();
        style(c);
        List<String> labels = s.lengths().stream().map(MarkdownReport::lengthLabel).toList();
        c.getStyler().setxAxisTickLabelsFormattingFunction(categoryLabels(labels));
        c.getStyler().setXAxisMaxLabelCount(labels.size());
        if (labels.size() == 1) {
            c.getStyler().setXAxisMin(-0.5).setXAxisMax(0.5);
        }
        return c;
    }

    private static void addLengthSeries(XYChart c, EvalSummary s, String variant,
                                        Function<Integer, EvalSummary.Cell> cellAt, ToDoubleFunction<EvalSummary.Cell> y) {
        List<Double> xs = new ArrayList<>();
        List<Double> ys = new ArrayList<>();
        for (int i = 0; i < s.lengths().size(); i++) {
            EvalSummary.Cell cell = cellAt.apply(s.lengths().get(i));
            if (cell.n() > 0 && !Double.isNaN(y.applyAsDouble(cell))) {
                xs.add((double) i);
                ys.add(y.applyAsDouble(cell));
            }
        }
        if (xs.isEmpty()) {
            return;
        }
        int k = s.variants().indexOf(variant) % COLORS.length;
        XYSeries series = c.addSeries(variant, xs, ys);
        paint(series, k % 2 == 0 ? SeriesMarkers.CIRCLE : SeriesMarkers.DIAMOND, COLORS[k]);
    }

    private static Function<Double, String> categoryLabels(List<String> labels) {
        return v -> {
            long i = Math.round(v);
            return Math.abs(v - i) < 1e-6 && i >= 0 && i < labels.size() ? labels.get((int) i) : "";
        };
    }

    private static void paint(XYSeries s, org.knowm.xchart.style.markers.Marker marker, Color color) {
        s.setMarker(marker);
        s.setLineColor(color);
        s.setMarkerColor(color);
        s.setLineWidth(2.5f);
    }

    private static void style(XYChart c) {
        XYStyler st = c.getStyler();
        st.setChartBackgroundColor(Color.WHITE);
        st.setLegendPosition(Styler.LegendPosition.InsideSW);
        st.setAntiAlias(true);
        st.setPlotBackgroundColor(Color.WHITE);
        st.setPlotGridLinesColor(new Color(0xdddddd));
        st.setYAxisDecimalPattern("#0.#");
        st.setMarkerSize(8);
        st.setLegendBackgroundColor(new Color(255, 255, 255, 220));
    }

    /** Tiles charts of equal size {@code cols} to a row on a white background (XChart's own grid needs a full last row). */
    private static Path saveGrid(List<XYChart> charts, int cols, Path file) throws IOException {
        int n = charts.size();
        int c = Math.min(cols, n);
        int rows = (n + c - 1) / c;
        int w = charts.getFirst().getWidth();
        int h = charts.getFirst().getHeight();
        BufferedImage img = new BufferedImage(w * c, h * rows, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, img.getWidth(), img.getHeight());
            for (int i = 0; i < n; i++) {
                g.drawImage(BitmapEncoder.getBufferedImage(charts.get(i)), (i % c) * w, (i / c) * h, null);
            }
        } finally {
            g.dispose();
        }
        if (!ImageIO.write(img, "png", file.toFile())) {
            throw new IOException("no PNG writer");
        }
        return file;
    }

    private static Path save(XYChart c, Path file) throws IOException {
        BitmapEncoder.saveBitmap(c, file.toString(), BitmapEncoder.BitmapFormat.PNG);
        return file;
    }
}
