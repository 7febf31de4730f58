{{- define "relay.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "relay.peers" -}}
{{ .Release.Name }}-peers
{{- end -}}
