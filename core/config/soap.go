package config

// SOAP is the soap terminal: HTTP/JSON requests turned into SOAP envelopes
// and the XML answers into JSON.
type SOAP struct {
	// Upstream names the upstream of the SOAP service. Required.
	Upstream string `json:"upstream" yaml:"upstream"`
}

func (s *SOAP) setDefaults() {}

// validateSOAP checks a route's soap terminal.
func validateSOAP(errs *Errors, path string, s *SOAP, upstreams, params []string, paramsOK bool) {}
