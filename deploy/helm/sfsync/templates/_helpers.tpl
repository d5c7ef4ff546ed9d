{{/* The release's name, cut to Kubernetes' 63 characters. */}}
{{- define "sfsync.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sfsync.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component (producer or worker). */}}
{{- define "sfsync.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "sfsync.secretName" -}}
{{- if .Values.secret.existingSecret -}}
{{- .Values.secret.existingSecret -}}
{{- else -}}
{{- include "sfsync.fullname" . -}}
{{- end -}}
{{- end -}}

{{- define "sfsync.image" -}}
{{ printf "%s:%s" .Values.image.repository .Values.image.tag }}
{{- end -}}

{{/* Environment, volumes and probes both components share. */}}
{{- define "sfsync.env" -}}
- name: SFSYNC_CONFIG
  value: /etc/sfsync/sfsync.toml
- name: SFSYNC_METRICS_ADDR
  value: {{ printf "0.0.0.0:%v" .Values.metricsPort | quote }}
{{- if or .Values.secret.jwtKey .Values.secret.existingSecretHasJwtKey }}
- name: SF_JWT_KEY_FILE
  value: /etc/sfsync/jwt/jwt.key
{{- end }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{- define "sfsync.volumeMounts" -}}
- name: config
  mountPath: /etc/sfsync/sfsync.toml
  subPath: sfsync.toml
  readOnly: true
{{- if or .Values.secret.jwtKey .Values.secret.existingSecretHasJwtKey }}
- name: jwt
  mountPath: /etc/sfsync/jwt
  readOnly: true
{{- end }}
{{- end -}}

{{- define "sfsync.volumes" -}}
- name: config
  configMap:
    name: {{ include "sfsync.fullname" . }}
{{- if or .Values.secret.jwtKey .Values.secret.existingSecretHasJwtKey }}
- name: jwt
  secret:
    secretName: {{ include "sfsync.secretName" . }}
    items:
      - key: jwt.key
        path: jwt.key
{{- end }}
{{- end -}}

{{- define "sfsync.probes" -}}
ports:
  - name: metrics
    containerPort: {{ .Values.metricsPort }}
livenessProbe:
  httpGet: {path: /livez, port: metrics}
  periodSeconds: 10
  failureThreshold: 6
readinessProbe:
  httpGet: {path: /readyz, port: metrics}
  periodSeconds: 5
  failureThreshold: 2
startupProbe:
  httpGet: {path: /livez, port: metrics}
  periodSeconds: 2
  failureThreshold: 30
{{- end -}}
