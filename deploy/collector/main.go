// Command otelcol-latency-lab is the smallest OpenTelemetry Collector distribution that runs
// the two-tier topology of deploy/: the front tier (OTLP in, the contrib `loadbalancing`
// exporter out, routing by trace id) and the tail-sampling tier (OTLP in, `tail_sampling`,
// OTLP out). It holds exactly the components deploy/configs/front.yaml and sampler.yaml use,
// at the release the rest of the project is on (core v0.140.0 / v1.46.0, contrib v0.140.1).
//
// Why build one at all: the compose file and the Kubernetes manifests run the contrib image,
// which has these components, but there is no Docker here, and the tests must run the real
// components. The OpenTelemetry Collector Builder (ocb) would generate this same file from a
// manifest; writing it by hand saves building the builder and keeps one file to read.
//
// Build: deploy/collector/build.sh OUT (the test harness does the same, on demand).
//
// go.mod pins every module this shares with the Jaeger the tests build (Jaeger 2.13, module
// v1.76.0, made of the same collector release) at the version Jaeger's build selects, so that
// a build after Jaeger's reuses Go's build cache and compiles only the loadbalancing exporter
// and its Kubernetes client (minutes saved in CI). When Jaeger moves, realign: `go get` each
// shared module at the version `go list -deps` shows in Jaeger's build.
package main

import (
	"log"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/loadbalancingexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckv2extension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/tailsamplingprocessor"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

func components() (otelcol.Factories, error) {
	var err error
	// The collector's own logs and metrics (the `service.telemetry` section).
	factories := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}
	if factories.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](
		healthcheckv2extension.NewFactory(),
	); err != nil {
		return otelcol.Factories{}, err
	}
	if factories.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](
		otlpreceiver.NewFactory(),
	); err != nil {
		return otelcol.Factories{}, err
	}
	if factories.Processors, err = otelcol.MakeFactoryMap[processor.Factory](
		batchprocessor.NewFactory(),
		memorylimiterprocessor.NewFactory(),
		tailsamplingprocessor.NewFactory(),
	); err != nil {
		return otelcol.Factories{}, err
	}
	if factories.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](
		otlpexporter.NewFactory(),
		loadbalancingexporter.NewFactory(),
		debugexporter.NewFactory(),
	); err != nil {
		return otelcol.Factories{}, err
	}
	return factories, nil
}

func main() {
	settings := otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol-latency-lab",
			Description: "latency-lab's front-tier and tail-sampling collector",
			Version:     "0.140.1",
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
				DefaultScheme: "env",
			},
		},
	}
	if err := otelcol.NewCommand(settings).Execute(); err != nil {
		log.Fatal(err)
	}
}
