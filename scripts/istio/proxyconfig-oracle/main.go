// Command proxyconfig-oracle runs Istio's OWN ProxyConfig functions from the pinned
// istio.io/istio module on a batch of cases, so tests can check meshcfg's explain against
// them. It is an oracle of Istio's code, not a stand-in: every merge below is Istio's.
//
//   - injection: model.GetProxyConfigs + (*ProxyConfigs).EffectiveProxyConfig, what the
//     injector (pkg/kube/inject/webhook.go) freezes into PROXY_CONFIG and the proxy's env;
//   - run time: pilot-agent's config.ConstructProxyConfig (pilot/cmd/pilot-agent/config),
//     given that PROXY_CONFIG and the pod's annotations in the downward-API file it reads
//     (./etc/istio/pod/annotations, relative to the working directory: a private temp dir).
//
// Usage: proxyconfig-oracle OUT.json < IN.json
//
//	IN:  {"cases": [{"mesh": "<mesh config YAML>", "cpuLimit": N,
//	       "proxyConfigs": [{"namespace", "name", "created": RFC 3339, "spec": {...}}],
//	       "pod": {"namespace", "labels": {...}, "annotations": {...}}}]}
//	OUT: {"results": [{"injected": {ProxyConfig JSON}, "runtime": {ProxyConfig JSON},
//	       "error": ""}]}
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"istio.io/api/networking/v1beta1"
	agentconfig "istio.io/istio/pilot/cmd/pilot-agent/config"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/config/schema/collection"
	"istio.io/istio/pkg/config/schema/gvk"
	"istio.io/istio/pkg/util/protomarshal"
)

type proxyConfigIn struct {
	Namespace string          `json:"namespace"`
	Name      string          `json:"name"`
	Created   string          `json:"created"`
	Spec      json.RawMessage `json:"spec"`
}

type podIn struct {
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type caseIn struct {
	Mesh         string          `json:"mesh"`
	CPULimit     int             `json:"cpuLimit"`
	ProxyConfigs []proxyConfigIn `json:"proxyConfigs"`
	Pod          podIn           `json:"pod"`
}

type result struct {
	Injected json.RawMessage `json:"injected,omitempty"`
	Runtime  json.RawMessage `json:"runtime,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// listStore is the smallest model.ConfigStore GetProxyConfigs can read: it only lists.
type listStore struct{ configs []config.Config }

func (s listStore) Schemas() collection.Schemas                                { return collection.Schemas{} }
func (s listStore) Get(config.GroupVersionKind, string, string) *config.Config { return nil }
func (s listStore) List(typ config.GroupVersionKind, _ string) []config.Config {
	if typ != gvk.ProxyConfig {
		return nil
	}
	return append([]config.Config(nil), s.configs...)
}
func (s listStore) Create(config.Config) (string, error)       { return "", fmt.Errorf("read-only") }
func (s listStore) Update(config.Config) (string, error)       { return "", fmt.Errorf("read-only") }
func (s listStore) UpdateStatus(config.Config) (string, error) { return "", fmt.Errorf("read-only") }
func (s listStore) Delete(config.GroupVersionKind, string, string, *string) error {
	return fmt.Errorf("read-only")
}

func store(in []proxyConfigIn) (listStore, error) {
	var s listStore
	for _, pc := range in {
		spec := &v1beta1.ProxyConfig{}
		if err := protomarshal.ApplyJSON(string(pc.Spec), spec); err != nil {
			return s, fmt.Errorf("ProxyConfig %s/%s: %v", pc.Namespace, pc.Name, err)
		}
		created, err := time.Parse(time.RFC3339, pc.Created)
		if err != nil {
			return s, fmt.Errorf("ProxyConfig %s/%s created: %v", pc.Namespace, pc.Name, err)
		}
		s.configs = append(s.configs, config.Config{
			Meta: config.Meta{GroupVersionKind: gvk.ProxyConfig, Name: pc.Name,
				Namespace: pc.Namespace, CreationTimestamp: created},
			Spec: spec,
		})
	}
	return s, nil
}

// downwardAPI writes the pod's annotations as kubelet's downward-API volume does (%s=%q).
func downwardAPI(annotations map[string]string) error {
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	text := ""
	for _, k := range keys {
		text += fmt.Sprintf("%s=%q\n", k, annotations[k])
	}
	return os.WriteFile(filepath.Join("etc", "istio", "pod", "annotations"), []byte(text), 0o600)
}

func run(c caseIn) result {
	mc, err := mesh.ApplyMeshConfigDefaults(c.Mesh)
	if err != nil {
		return result{Error: "mesh: " + err.Error()}
	}
	s, err := store(c.ProxyConfigs)
	if err != nil {
		return result{Error: err.Error()}
	}
	injected := model.GetProxyConfigs(s, mc).EffectiveProxyConfig(&model.NodeMetadata{
		Namespace: c.Pod.Namespace, Labels: c.Pod.Labels, Annotations: c.Pod.Annotations}, mc)
	env, err := protomarshal.ToJSON(injected)
	if err != nil {
		return result{Error: err.Error()}
	}
	if err := downwardAPI(c.Pod.Annotations); err != nil {
		return result{Error: err.Error()}
	}
	agentconfig.CPULimit = c.CPULimit
	runtime, err := agentconfig.ConstructProxyConfig("", "istio-proxy", env, 0)
	if err != nil {
		return result{Injected: json.RawMessage(env), Error: "pilot-agent: " + err.Error()}
	}
	out, err := protomarshal.ToJSON(runtime)
	if err != nil {
		return result{Error: err.Error()}
	}
	return result{Injected: json.RawMessage(env), Runtime: json.RawMessage(out)}
}

func main() { os.Exit(oracle()) }

func oracle() int {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: proxyconfig-oracle OUT.json < IN.json")
		return 2
	}
	out, err := filepath.Abs(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var in struct {
		Cases []caseIn `json:"cases"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "proxyconfig-oracle: reading stdin:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "proxyconfig-oracle-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "etc", "istio", "pod"), 0o700); err == nil {
		err = os.Chdir(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	results := make([]result, 0, len(in.Cases))
	for _, c := range in.Cases {
		results = append(results, run(c))
	}
	data, err := json.Marshal(map[string][]result{"results": results})
	if err == nil {
		err = os.WriteFile(out, data, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
