package chaosreport

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSaveLoadRender(t *testing.T) {
	dir := t.TempDir()
	good := Result{Order: 2, Fault: "Kafka broker restart during run", Test: "TestChaosFaults/BrokerRestartRun",
		Injected: 3, Produced: 1000, Expected: 400, Found: 400, Equal: true, LongestStall: 12.34,
		Notes: []string{"caught up 4 s after the broker was back"}}
	expected := Result{Order: 3, Fault: "resurrection in delete mode", Test: "TestChaosFaults/BrokerRestartRun",
		Injected: 1, Expected: 0, Found: 50, Extra: 50, LossExpected: true}
	for _, r := range []Result{expected, good} {
		if err := Save(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Test != good.Test || got[1].Test != expected.Test {
		t.Fatalf("Load = %+v, want the two results in Order", got)
	}
	var b bytes.Buffer
	if err := Render(&b, Meta{Generated: time.Unix(0, 0), Command: "make chaos"}, got); err != nil {
		t.Fatalf("Render: %v", err)
	}
	out := b.String()
	for _, want := range []string{
		"| Kafka broker restart during run | 3 | 1000 | 400 | 400 | 0 | 0 | 0 | 0 | 12.3 s | yes |",
		"| resurrection in delete mode | 1 | 0 | 0 | 50 | 0 | 50 | 0 | 0 | – | no (expected: see below) |",
		"**1 of 2 scenarios end with the index equal to the reference model.** The other 1 are",
		"- caught up 4 s after the broker was back",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	bad := good
	bad.Test, bad.Lost, bad.Equal = "TestBad", 1, false
	b.Reset()
	if err := Render(&b, Meta{}, []Result{bad}); !errors.Is(err, ErrFailed) {
		t.Fatalf("Render of a lost document = %v, want ErrFailed", err)
	}
	if !strings.Contains(b.String(), "**NO**") {
		t.Errorf("a failed scenario is not flagged:\n%s", b.String())
	}
}

func TestLoadEmpty(t *testing.T) {
	if _, err := Load(t.TempDir()); err == nil {
		t.Fatal("Load of an empty directory succeeded")
	}
}
