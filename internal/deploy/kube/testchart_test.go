package kube

import (
	"os"
	"path/filepath"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
)

// The test chart: a Deployment of one image (pinned through image.repository, .tag
// and .digest) with the pod annotations of values.podAnnotations, a Service, and a
// Secret holding values.token.
var testChartFiles = map[string]string{
	"Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\nappVersion: \"1.0\"\n",
	"values.yaml": `replicaCount: 1
token: ""
podAnnotations: {}
image:
  repository: ""
  tag: ""
  digest: ""
`,
	"templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    app: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
      {{- with .Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      containers:
      - name: web
        image: "{{ .Values.image.repository }}{{ with .Values.image.digest }}@{{ . }}{{ else }}:{{ .Values.image.tag }}{{ end }}"
        ports:
        - containerPort: 8080
`,
	"templates/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector:
    app: {{ .Release.Name }}
  ports:
  - port: 80
    targetPort: 8080
`,
	"templates/secret.yaml": `apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}
stringData:
  token: {{ .Values.token | quote }}
`,
}

// writeTestChart writes the test chart at version into a new directory and answers
// its path.
func writeTestChart(t *testing.T, version string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "web")
	for name, body := range testChartFiles {
		if name == "Chart.yaml" {
			body = "apiVersion: v2\nname: web\nversion: " + version + "\nappVersion: \"1.0\"\n"
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// packageTestChart archives the test chart at version into dest (helm package) and
// answers the archive's path.
func packageTestChart(t *testing.T, version, dest string) string {
	t.Helper()
	ch, err := loader.LoadDir(writeTestChart(t, version))
	if err != nil {
		t.Fatal(err)
	}
	p, err := chartutil.Save(ch, dest)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
