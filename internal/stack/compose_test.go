//go:build integration

package stack

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"
)

// composeFile is the part of a (normalised) compose file the test looks at.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     any               `yaml:"command"`
		Ports       []any             `yaml:"ports"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   any               `yaml:"depends_on"`
	} `yaml:"services"`
}

// composeConfig renders docker-compose.yml through `docker-compose config` (Debian's v1
// package) or `docker compose config` (v2). Without either binary it fails under
// REQUIRE_REAL_SERVICES=1 and otherwise checks the raw file.
func composeConfig(t *testing.T, root string) []byte {
	t.Helper()
	file := filepath.Join(root, "docker-compose.yml")
	var c []string
	if _, err := exec.LookPath("docker-compose"); err == nil {
		c = []string{"docker-compose", "-f", file, "config"}
	} else if _, err := exec.LookPath("docker"); err == nil {
		c = []string{"docker", "compose", "-f", file, "config"}
	}
	if c != nil {
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Dir = root
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(c, " "), err, stderr.String())
		}
		t.Logf("rendered with %s", strings.Join(c, " "))
		return out
	}
	if os.Getenv("REQUIRE_REAL_SERVICES") == "1" {
		t.Fatal("docker-compose is not installed (apt-get install -y docker-compose) and REQUIRE_REAL_SERVICES=1")
	}
	t.Log("no docker-compose binary: checking the raw docker-compose.yml")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publishedPorts returns host port -> container port for short ("127.0.0.1:9092:9092/tcp")
// and long ({published: 9092, target: 9092}) port syntax.
func publishedPorts(t *testing.T, ports []any) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, p := range ports {
		switch v := p.(type) {
		case string:
			parts := strings.Split(strings.SplitN(v, "/", 2)[0], ":")
			if len(parts) < 2 {
				t.Errorf("port %q publishes no host port", v)
				continue
			}
			m[parts[len(parts)-2]] = parts[len(parts)-1]
		case map[any]any:
			m[fmt.Sprint(v["published"])] = fmt.Sprint(v["target"])
		default:
			t.Errorf("unexpected port entry %#v", p)
		}
	}
	return m
}

// TestComposeConfig: docker-compose.yml is valid and serves the same versions and host ports
// as the no-Docker stack's defaults in scripts/services.sh.
func TestComposeConfig(t *testing.T) {
	root := repoRoot(t)
	def := scriptDefaults(t)
	var cf composeFile
	if err := yaml.Unmarshal(composeConfig(t, root), &cf); err != nil {
		t.Fatalf("parse compose config: %v", err)
	}
	for _, name := range []string{"kafka", "opensearch", "reindexer"} {
		if _, ok := cf.Services[name]; !ok {
			t.Fatalf("service %q missing (have %v)", name, cf.Services)
		}
	}

	kafka := cf.Services["kafka"]
	if want := "apache/kafka:" + def["KAFKA_VERSION"]; kafka.Image != want {
		t.Errorf("kafka image %q, want %q (KAFKA_VERSION default)", kafka.Image, want)
	}
	kp := publishedPorts(t, kafka.Ports)
	if _, ok := kp[def["KAFKA_PORT"]]; !ok {
		t.Errorf("kafka publishes %v, want host port %s (KAFKA_PORT default)", kp, def["KAFKA_PORT"])
	}
	// The host listener must advertise the published host port; the compose-network listener
	// must advertise the service name.
	adv := kafka.Environment["KAFKA_ADVERTISED_LISTENERS"]
	if !strings.Contains(adv, "://127.0.0.1:"+def["KAFKA_PORT"]) && !strings.Contains(adv, "://localhost:"+def["KAFKA_PORT"]) {
		t.Errorf("KAFKA_ADVERTISED_LISTENERS=%q advertises no host listener on %s", adv, def["KAFKA_PORT"])
	}
	internal := regexp.MustCompile(`://kafka:(\d+)`).FindStringSubmatch(adv)
	if internal == nil {
		t.Fatalf("KAFKA_ADVERTISED_LISTENERS=%q advertises no listener for the compose network (kafka:<port>)", adv)
	}
	if kafka.Environment["KAFKA_PROCESS_ROLES"] != "broker,controller" {
		t.Errorf("kafka is not a single combined KRaft node: KAFKA_PROCESS_ROLES=%q", kafka.Environment["KAFKA_PROCESS_ROLES"])
	}
	for k, w := range map[string]string{"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1", "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0"} {
		if kafka.Environment[k] != w {
			t.Errorf("kafka %s=%q, want %q", k, kafka.Environment[k], w)
		}
	}

	ose := cf.Services["opensearch"]
	if want := "opensearchproject/opensearch:" + def["OPENSEARCH_VERSION"]; ose.Image != want {
		t.Errorf("opensearch image %q, want %q (OPENSEARCH_VERSION default)", ose.Image, want)
	}
	op := publishedPorts(t, ose.Ports)
	if op[def["OPENSEARCH_PORT"]] != "9200" {
		t.Errorf("opensearch publishes %v, want host port %s -> 9200 (OPENSEARCH_PORT default)", op, def["OPENSEARCH_PORT"])
	}
	for k, w := range map[string]string{"DISABLE_SECURITY_PLUGIN": "true", "discovery.type": "single-node"} {
		if ose.Environment[k] != w {
			t.Errorf("opensearch %s=%q, want %q", k, ose.Environment[k], w)
		}
	}
	if ose.Environment["path.repo"] == "" {
		t.Error("opensearch has no path.repo")
	}

	ri := cf.Services["reindexer"]
	if ri.Build == nil {
		t.Error("reindexer is not built from the Dockerfile")
	}
	if !strings.Contains(fmt.Sprint(ri.Command), "run") {
		t.Errorf("reindexer command %v, want run", ri.Command)
	}
	if got, want := ri.Environment["REINDEXER_BROKERS"], "kafka:"+internal[1]; got != want {
		t.Errorf("REINDEXER_BROKERS=%q, want %q (the compose-network listener)", got, want)
	}
	if got, want := ri.Environment["REINDEXER_OPENSEARCH"], "http://opensearch:9200"; got != want {
		t.Errorf("REINDEXER_OPENSEARCH=%q, want %q", got, want)
	}
	for _, k := range []string{"REINDEXER_TOPIC", "REINDEXER_GROUP", "REINDEXER_INDEX"} {
		if ri.Environment[k] == "" {
			t.Errorf("reindexer has no %s", k)
		}
	}
	for _, dep := range []string{"kafka", "opensearch"} {
		if !strings.Contains(fmt.Sprint(ri.DependsOn), dep) {
			t.Errorf("reindexer does not depend on %s: %v", dep, ri.DependsOn)
		}
	}

	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^ENTRYPOINT \["reindexer"\]`).Match(df) {
		t.Error(`Dockerfile has no ENTRYPOINT ["reindexer"]`)
	}
}
