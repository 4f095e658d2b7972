{{/* The labels every object carries; the selector uses the first two. */}}
{{- define "tern.selector" -}}
app.kubernetes.io/name: tern
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tern.labels" -}}
{{ include "tern.selector" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "tern.image" -}}
{{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "tern.secretName" -}}
{{ default (printf "%s-auth" .Release.Name) .Values.auth.existingSecret }}
{{- end }}

{{/* Reading the Node object is needed only to find its ExternalIP address. */}}
{{- define "tern.readsNodes" -}}
{{ eq .Values.externalIp "node-external-ip" }}
{{- end }}
