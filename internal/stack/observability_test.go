//go:build integration

package stack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"
)

// composeMounts returns container path -> host path of a service's bind
// mounts, for the short ("./a:/b:ro") and the long ({source, target}) syntax.
func composeMounts(t *testing.T, root string, vols []any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range vols {
		switch x := v.(type) {
		case string:
			parts := strings.Split(x, ":")
			if len(parts) < 2 {
				t.Errorf("volume %q mounts nothing", x)
				continue
			}
			out[parts[1]] = parts[0]
		case map[any]any:
			out[fmt.Sprint(x["target"])] = fmt.Sprint(x["source"])
		default:
			t.Errorf("unexpected volume entry %#v", v)
		}
	}
	for target, src := range out {
		if !filepath.IsAbs(src) {
			src = filepath.Join(root, src)
		}
		if strings.HasPrefix(src, root) {
			if _, err := os.Stat(src); err != nil {
				t.Errorf("mount %s: %v", target, err)
			}
		}
		out[target] = src
	}
	return out
}

// TestComposeObservability: docker-compose.yml runs Prometheus, scraping
// the worker's metrics port with the repository's alert rules, and Grafana,
// provisioned with a Prometheus data source and the reindexer dashboard.
func TestComposeObservability(t *testing.T) {
	root := repoRoot(t)
	var cf struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     any               `yaml:"command"`
			Ports       []any             `yaml:"ports"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []any             `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(composeConfig(t, root), &cf); err != nil {
		t.Fatalf("parse compose config: %v", err)
	}
	prom, ok := cf.Services["prometheus"]
	if !ok {
		t.Fatal("no prometheus service")
	}
	graf, ok := cf.Services["grafana"]
	if !ok {
		t.Fatal("no grafana service")
	}
	worker := cf.Services["reindexer"]
	_, metricsPort, _ := strings.Cut(worker.Environment["REINDEXER_METRICS_ADDR"], ":")
	if metricsPort == "" {
		t.Fatal("the reindexer service serves no metrics (REINDEXER_METRICS_ADDR)")
	}

	pm := composeMounts(t, root, prom.Volumes)
	cfgPath := pm["/etc/prometheus/prometheus.yml"]
	if cfgPath == "" || !strings.Contains(fmt.Sprint(prom.Command), "/etc/prometheus/prometheus.yml") {
		t.Fatalf("prometheus does not run with the mounted prometheus.yml (mounts %v, command %v)", pm, prom.Command)
	}
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var pc struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &pc); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	scrapes := fmt.Sprint(pc.ScrapeConfigs)
	if !strings.Contains(scrapes, "reindexer:"+metricsPort) {
		t.Errorf("prometheus scrapes %s, want reindexer:%s", scrapes, metricsPort)
	}
	if len(pc.RuleFiles) != 1 || filepath.Base(pm[pc.RuleFiles[0]]) != "alerts.yml" {
		t.Errorf("rule_files %v: want the mounted deploy/prometheus/alerts.yml (mounts %v)", pc.RuleFiles, pm)
	}

	gm := composeMounts(t, root, graf.Volumes)
	prov := gm["/etc/grafana/provisioning"]
	if prov == "" {
		t.Fatalf("grafana has no provisioning mount: %v", gm)
	}
	var ds struct {
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	b, err = os.ReadFile(filepath.Join(prov, "datasources", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &ds); err != nil || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" ||
		ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("grafana data source %+v (%v), want prometheus at http://prometheus:9090", ds, err)
	}
	var dp struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	b, err = os.ReadFile(filepath.Join(prov, "dashboards", "reindexer.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &dp); err != nil || len(dp.Providers) != 1 {
		t.Fatalf("grafana dashboard provider: %+v %v", dp, err)
	}
	dash := gm[dp.Providers[0].Options.Path+"/reindexer.json"]
	if filepath.Base(dash) != "reindexer.json" {
		t.Errorf("the dashboard provider reads %s, where reindexer.json is not mounted (mounts %v)", dp.Providers[0].Options.Path, gm)
	}

	// promtool validates the configuration with the rules beside it.
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("REQUIRE_REAL_SERVICES") == "1" {
			t.Fatal("promtool is not installed (apt-get install -y prometheus) and REQUIRE_REAL_SERVICES=1")
		}
		t.Log("promtool not installed: configuration not checked by promtool")
		return
	}
	dir := t.TempDir()
	rules, err := os.ReadFile(pm[pc.RuleFiles[0]])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), rules, 0o600); err != nil {
		t.Fatal(err)
	}
	local := strings.ReplaceAll(string(mustRead(t, cfgPath)), pc.RuleFiles[0], filepath.Join(dir, "alerts.yml"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(local), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
