// helmrender renders deploy/helm/relay the way `helm template` does, with Go's text/template
// (Helm's engine) and the few Sprig functions the chart uses, so the suite can validate the
// output against the Kubernetes schemas without Helm (in neither Debian nor PyPI).
//
// Usage: go run main.go CHART_DIR RELEASE NAMESPACE [key=value ...]
// (key=value sets a top-level value: voters=5 learners=2). Writes the manifests to stdout.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "helmrender: "+format+"\n", args...)
	os.Exit(1)
}

// values.yaml is written in YAML's JSON form: drop the comment lines, then it is JSON.
func loadValues(path string) map[string]interface{} {
	raw, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	var kept []string
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			kept = append(kept, line)
		}
	}
	values := map[string]interface{}{}
	if err := json.Unmarshal([]byte(strings.Join(kept, "\n")), &values); err != nil {
		fail("values.yaml is not YAML's JSON form: %v", err)
	}
	return values
}

func chartName(path string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "name:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "name:"))
		}
	}
	fail("Chart.yaml has no name")
	return ""
}

func toInt(v interface{}) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	case int:
		return int64(n)
	case int64:
		return n
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		if err == nil {
			return i
		}
	}
	fail("not a number: %v", v)
	return 0
}

// toYaml: block YAML for maps, lists and scalars (keys sorted, as Helm's does).
func toYaml(v interface{}) string {
	var b strings.Builder
	writeYaml(&b, v, 0)
	return strings.TrimRight(b.String(), "\n")
}

func scalar(v interface{}) string {
	switch s := v.(type) {
	case string:
		q, _ := json.Marshal(s)
		return string(q)
	case float64:
		return strconv.FormatFloat(s, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(s)
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

func writeYaml(b *strings.Builder, v interface{}, indent int) {
	pad := strings.Repeat(" ", indent)
	switch m := v.(type) {
	case map[string]interface{}:
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch m[k].(type) {
			case map[string]interface{}, []interface{}:
				fmt.Fprintf(b, "%s%s:\n", pad, k)
				writeYaml(b, m[k], indent+2)
			default:
				fmt.Fprintf(b, "%s%s: %s\n", pad, k, scalar(m[k]))
			}
		}
	case []interface{}:
		for _, item := range m {
			fmt.Fprintf(b, "%s- %s\n", pad, strings.TrimSpace(toYaml(item)))
		}
	default:
		fmt.Fprintf(b, "%s%s\n", pad, scalar(v))
	}
}

func main() {
	if len(os.Args) < 4 {
		fail("usage: helmrender CHART_DIR RELEASE NAMESPACE [key=value ...]")
	}
	dir, release, namespace := os.Args[1], os.Args[2], os.Args[3]
	values := loadValues(filepath.Join(dir, "values.yaml"))
	for _, kv := range os.Args[4:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			fail("not key=value: %s", kv)
		}
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			values[k] = n
		} else {
			values[k] = v
		}
	}
	data := map[string]interface{}{
		"Values":  values,
		"Release": map[string]interface{}{"Name": release, "Namespace": namespace},
		"Chart":   map[string]interface{}{"Name": chartName(filepath.Join(dir, "Chart.yaml"))},
	}
	root := template.New("chart").Option("missingkey=error")
	funcs := template.FuncMap{
		"include": func(name string, data interface{}) (string, error) {
			var out bytes.Buffer
			err := root.ExecuteTemplate(&out, name, data)
			return out.String(), err
		},
		"toYaml":  toYaml,
		"nindent": func(n int, s string) string { return "\n" + indent(n, s) },
		"indent":  indent,
		"quote":   func(v interface{}) string { q, _ := json.Marshal(fmt.Sprint(v)); return string(q) },
		"add":     func(a, b interface{}) int64 { return toInt(a) + toInt(b) },
		"sub":     func(a, b interface{}) int64 { return toInt(a) - toInt(b) },
		"div":     func(a, b interface{}) int64 { return toInt(a) / toInt(b) },
	}
	root.Funcs(funcs)
	files, _ := filepath.Glob(filepath.Join(dir, "templates", "*"))
	sort.Strings(files)
	var manifests []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			fail("%v", err)
		}
		if _, err := root.New(filepath.Base(f)).Parse(string(raw)); err != nil {
			fail("%s: %v", f, err)
		}
		if !strings.HasPrefix(filepath.Base(f), "_") {
			manifests = append(manifests, filepath.Base(f))
		}
	}
	for i, name := range manifests {
		var out bytes.Buffer
		if err := root.ExecuteTemplate(&out, name, data); err != nil {
			fail("%s: %v", name, err)
		}
		if i > 0 {
			fmt.Println("---")
		}
		fmt.Printf("# Source: relay/templates/%s\n%s\n", name, strings.TrimSpace(out.String()))
	}
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}
