package dev.pyudf.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import pemja.core.PythonInterpreter;
import pemja.core.PythonInterpreterConfig;

/**
 * PEMJA anchor for pyudf's benchmark: {@code add(a, b)} and {@code upper(s)} called from Java
 * through PEMJA's {@link PythonInterpreter#invoke}, the way PyFlink's thread mode embeds CPython.
 *
 * <pre>
 * PYTHONPATH=.deps/pyflink-venv/lib/python3.11/site-packages \
 * java -cp target/pemja-bench.jar:target/lib/* dev.pyudf.bench.PemjaBench \
 *     --python .deps/pyflink-venv/bin/python --upper '&lt;100-byte string&gt;' [--quick]
 * </pre>
 *
 * <p>The embedded interpreter is the virtualenv's base CPython, so PYTHONPATH must name the
 * virtualenv's site-packages (where the {@code pemja} pip package is); {@code go run ./bench
 * -anchors} sets it.
 *
 * <p>Prints one JSON object per line in the format of {@code go run ./bench -json}: mode {@code
 * pemja} on {@code scalar_add_row} and {@code upper_100b_row}, with {@code goroutines} the number
 * of Java threads (1 and 8). Each Java thread owns one {@link PythonInterpreter} (PEMJA's
 * MULTI_THREAD type: one thread state per interpreter object, one GIL), created on that thread
 * and used only there, as PEMJA requires; each function has threads of its own (see main). The
 * variants run in interleaved rounds, as the Go
 * benchmark's do, after one warm-up round each (the JIT); rows/s is the median round, and every
 * 8th call is timed for the latency percentiles. Beside the calls, the same Python function runs
 * in a plain loop inside the interpreter ({@code python_floor_rows_per_s}).
 */
public final class PemjaBench {

    private static final String SETUP =
            String.join(
                    "\n",
                    "import importlib.metadata, platform, time",
                    "def add(a, b):",
                    "    return a + b",
                    "def upper(s):",
                    "    return s.upper()",
                    "def python_floor(name, s, seconds):",
                    "    n, start = 0, time.perf_counter()",
                    "    while time.perf_counter() - start < seconds:",
                    "        if name == 'add':",
                    "            for i in range(1000):",
                    "                add(i, 1)",
                    "        else:",
                    "            for _ in range(1000):",
                    "                upper(s)",
                    "        n += 1000",
                    "    return n / (time.perf_counter() - start)",
                    "pemja_version = importlib.metadata.version('pemja')",
                    "python_version = platform.python_version()",
                    "");

    /** One Java thread with the interpreter it owns. */
    private static final class Worker {
        final ExecutorService thread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "pemja-bench");
            t.setDaemon(true);
            return t;
        });
        PythonInterpreter interp;

        Worker(PythonInterpreterConfig config) throws Exception {
            thread.submit(() -> {
                interp = new PythonInterpreter(config);
                interp.exec(SETUP);
                return null;
            }).get();
        }
    }

    /** What one call does; i numbers the calls of one thread. */
    private interface Call {
        void run(PythonInterpreter interp, long i);
    }

    private static final class Variant {
        final String name;
        final int threads;
        final Worker[] workers;
        final Call call;
        final List<Double> rates = new ArrayList<>();
        final List<long[]> lat = new ArrayList<>();

        Variant(String name, int threads, Worker[] workers, Call call) {
            this.name = name;
            this.threads = threads;
            this.workers = workers;
            this.call = call;
        }
    }

    private static volatile boolean stop;

    /** Runs v on its threads for millis and returns rows/s; latencies go to lat if not null. */
    private static double round(Variant v, long millis, List<long[]> lat)
            throws Exception {
        stop = false;
        List<Future<long[]>> futures = new ArrayList<>();
        long start = System.nanoTime();
        for (int w = 0; w < v.threads; w++) {
            Worker worker = v.workers[w];
            futures.add(worker.thread.submit(() -> {
                long[] sample = new long[1 << 16];
                int samples = 0;
                long n = 0;
                for (; !stop; n++) {
                    if ((n & 7) == 0) {
                        long t0 = System.nanoTime();
                        v.call.run(worker.interp, n);
                        long dt = System.nanoTime() - t0;
                        if (samples == sample.length) {
                            sample = Arrays.copyOf(sample, samples * 2);
                        }
                        sample[samples++] = dt;
                    } else {
                        v.call.run(worker.interp, n);
                    }
                }
                long[] out = Arrays.copyOf(sample, samples + 1);
                out[samples] = n; // the call count rides last
                return out;
            }));
        }
        Thread.sleep(millis);
        stop = true;
        long total = 0;
        for (Future<long[]> f : futures) {
            long[] out = f.get();
            total += out[out.length - 1];
            if (lat != null) {
                lat.add(Arrays.copyOf(out, out.length - 1));
            }
        }
        return total / ((System.nanoTime() - start) / 1e9);
    }

    private static long percentile(long[] sorted, double p) {
        if (sorted.length == 0) {
            return 0;
        }
        return sorted[Math.min(sorted.length - 1, (int) (sorted.length * p))];
    }

    private static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }

    public static void main(String[] args) throws Exception {
        String python = null;
        String input = null;
        boolean quick = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--python" -> python = args[++i];
                case "--upper" -> input = args[++i];
                case "--quick" -> quick = true;
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        if (python == null || input == null) {
            throw new IllegalArgumentException("usage: PemjaBench --python PATH --upper STRING [--quick]");
        }
        int rounds = 5;
        long millis = quick ? 150 : 400;
        PythonInterpreterConfig config =
                PythonInterpreterConfig.newBuilder()
                        .setPythonExec(python)
                        .setExcType(PythonInterpreterConfig.ExecType.MULTI_THREAD)
                        .build();
        // PEMJA 0.5.7 crashes (SIGSEGV in PyObject_Call) when one interpreter invokes
        // functions of different names in turn, so each function has interpreters (and
        // threads) of its own, and the floor one more: each interpreter invokes one name.
        Worker[] addWorkers = new Worker[8];
        Worker[] upperWorkers = new Worker[8];
        for (int w = 0; w < 8; w++) {
            addWorkers[w] = new Worker(config);
            upperWorkers[w] = new Worker(config);
        }
        Worker floorWorker = new Worker(config);
        String want = input.toUpperCase(Locale.ROOT);
        String s = input;
        Call add = (interp, i) -> {
            Object r = interp.invoke("add", i, 1L);
            if (!(r instanceof Number) || ((Number) r).longValue() != i + 1) {
                throw new IllegalStateException("add(" + i + ", 1) returned " + r);
            }
        };
        Call upper = (interp, i) -> {
            Object r = interp.invoke("upper", s);
            if (!want.equals(r)) {
                throw new IllegalStateException("upper returned " + r);
            }
        };
        List<Variant> variants = List.of(
                new Variant("scalar_add_row", 1, addWorkers, add),
                new Variant("scalar_add_row", 8, addWorkers, add),
                new Variant("upper_100b_row", 1, upperWorkers, upper),
                new Variant("upper_100b_row", 8, upperWorkers, upper));

        double[] floorBefore = new double[2];
        for (int c = 0; c < 2; c++) {
            String name = c == 0 ? "add" : "upper";
            floorBefore[c] = floorWorker.thread.submit(
                    () -> ((Number) floorWorker.interp.invoke("python_floor", name, s, 0.5)).doubleValue()).get();
        }
        for (Variant v : variants) {
            round(v, millis, null); // warm-up
        }
        for (int r = 0; r < rounds; r++) {
            for (Variant v : variants) {
                v.rates.add(round(v, millis, v.lat));
            }
        }
        double[] floor = new double[2];
        for (int c = 0; c < 2; c++) {
            String name = c == 0 ? "add" : "upper";
            double after = floorWorker.thread.submit(
                    () -> ((Number) floorWorker.interp.invoke("python_floor", name, s, 0.5)).doubleValue()).get();
            floor[c] = (floorBefore[c] + after) / 2;
        }
        String pemjaVersion = floorWorker.thread.submit(() -> floorWorker.interp.get("pemja_version", String.class)).get();
        String pythonVersion = floorWorker.thread.submit(() -> floorWorker.interp.get("python_version", String.class)).get();

        for (Variant v : variants) {
            List<Double> rates = new ArrayList<>(v.rates);
            rates.sort(null);
            long[] lat = v.lat.stream().flatMapToLong(Arrays::stream).sorted().toArray();
            String note = String.format(Locale.ROOT,
                    "PEMJA %s PythonInterpreter.invoke from %d Java thread(s), one MULTI_THREAD interpreter each; "
                            + "CPython %s; python floor: the function in a Python loop in that interpreter",
                    pemjaVersion, v.threads, pythonVersion);
            System.out.println(String.format(Locale.ROOT,
                    "{\"name\":%s,\"mode\":\"pemja\",\"goroutines\":%d,\"batch_rows\":1,\"rows_per_s\":%.1f,"
                            + "\"p50_ns\":%d,\"p99_ns\":%d,\"p999_ns\":%d,\"rounds\":%d,"
                            + "\"python_floor_rows_per_s\":%.1f,\"note\":%s}",
                    quote(v.name), v.threads, rates.get(rates.size() / 2), percentile(lat, 0.50),
                    percentile(lat, 0.99), percentile(lat, 0.999), rounds,
                    floor[v.name.startsWith("scalar_add") ? 0 : 1], quote(note)));
        }
        System.out.flush();
        // PEMJA's main interpreter thread never ends; the interpreters die with the JVM.
        System.exit(0);
    }
}
