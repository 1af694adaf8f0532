package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/signer/awsv2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	saslaws "github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// OpenSearch authentication modes (--opensearch-auth).
const (
	authBasic = "basic" // HTTP basic auth when a username is given (the default)
	authAWS   = "aws"   // AWS SigV4 request signing
	authNone  = "none"  // no credentials at all
)

// osAuthFlags say how requests to OpenSearch authenticate. They live inside
// osFlags, so every registration of the OpenSearch flags (e.g. a second,
// prefixed one for the other side of a comparison) gets them too.
type osAuthFlags struct {
	prefix     string // flag-name prefix of this registration ("" or e.g. "against-")
	mode       string
	awsRegion  string
	awsService string

	// loadAWS loads the AWS configuration (credentials chain and region);
	// nil means awsconfig.LoadDefaultConfig. Tests replace it.
	loadAWS func(ctx context.Context, region string) (aws.Config, error)
}

// register adds --<prefix>opensearch-auth, --<prefix>opensearch-aws-region
// and --<prefix>opensearch-aws-service to fs.
func (a *osAuthFlags) register(fs *flag.FlagSet, prefix string) {
	a.prefix = prefix
	fs.StringVar(&a.mode, prefix+"opensearch-auth", authBasic,
		"how requests to OpenSearch authenticate: basic (HTTP basic auth with --"+prefix+"opensearch-username/-password, if a username is set), "+
			"aws (AWS SigV4 signing for Amazon OpenSearch Service or Serverless; credentials from the standard AWS chain: "+
			"environment, shared config/credentials profile (AWS_PROFILE), web identity (IRSA), container or instance role) or none")
	fs.StringVar(&a.awsRegion, prefix+"opensearch-aws-region", "",
		"with --"+prefix+"opensearch-auth aws: the domain's region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else the region in the endpoint's host name)")
	fs.StringVar(&a.awsService, prefix+"opensearch-aws-service", "",
		"with --"+prefix+"opensearch-auth aws: es (Amazon OpenSearch Service) or aoss (OpenSearch Serverless) (default: aoss for *.aoss.amazonaws.com endpoints, else es)")
}

// flagName returns the name of one of these flags in this registration.
func (a *osAuthFlags) flagName(name string) string { return a.prefix + name }

// check validates the flag values that need no AWS configuration.
func (a *osAuthFlags) check(username string) error {
	switch a.mode {
	case authBasic, "":
	case authAWS, authNone:
		if username != "" {
			return usageError{fmt.Errorf("flag --%s: --%s is only used with --%s basic", a.flagName("opensearch-auth"),
				a.flagName("opensearch-username"), a.flagName("opensearch-auth"))}
		}
	default:
		return usageError{fmt.Errorf("flag --%s: %q is not basic, aws or none", a.flagName("opensearch-auth"), a.mode)}
	}
	switch a.awsService {
	case "", "es", "aoss":
	default:
		return usageError{fmt.Errorf("flag --%s: %q is not es or aoss", a.flagName("opensearch-aws-service"), a.awsService)}
	}
	if a.mode != authAWS && (a.awsRegion != "" || a.awsService != "") {
		return usageError{fmt.Errorf("flags --%s/--%s need --%s aws", a.flagName("opensearch-aws-region"),
			a.flagName("opensearch-aws-service"), a.flagName("opensearch-auth"))}
	}
	return nil
}

// apply sets the authentication of cfg, an OpenSearch client configuration
// whose Addresses are set: basic auth, a SigV4 signer, or nothing.
func (a *osAuthFlags) apply(cfg *opensearch.Config, username, password string) error {
	if err := a.check(username); err != nil {
		return err
	}
	switch a.mode {
	case authNone:
		cfg.Username, cfg.Password = "", ""
		return nil
	case authAWS:
	default:
		cfg.Username, cfg.Password = username, password
		return nil
	}
	cfg.Username, cfg.Password = "", ""
	region, service := a.awsTarget(cfg.Addresses)
	load := a.loadAWS
	if load == nil {
		load = loadAWSConfig
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	awsCfg, err := load(ctx, region)
	if err != nil {
		return fmt.Errorf("flag --%s aws: loading the AWS configuration: %w", a.flagName("opensearch-auth"), err)
	}
	if awsCfg.Region == "" {
		return usageError{fmt.Errorf("flag --%s: no AWS region: set it, AWS_REGION, or a region in the AWS profile", a.flagName("opensearch-aws-region"))}
	}
	signer, err := awsv2.NewSignerWithService(awsCfg, service)
	if err != nil {
		return fmt.Errorf("aws signer: %w", err)
	}
	cfg.Signer = signer
	return nil
}

// awsTarget returns the region to load the AWS configuration with ("" lets
// the chain decide) and the signing service, from the flags or else from
// the endpoint host names (search-x.us-east-1.es.amazonaws.com,
// x.us-east-1.aoss.amazonaws.com).
func (a *osAuthFlags) awsTarget(addrs []string) (region, service string) {
	region, service = a.awsRegion, a.awsService
	var hostRegion, hostService string
	for _, s := range addrs {
		u, perr := url.Parse(s)
		if perr != nil {
			continue
		}
		r, svc := awsHostRegion(u.Hostname())
		if svc != "" {
			hostRegion, hostService = r, svc
			break
		}
	}
	if service == "" {
		service = hostService
		if service == "" {
			service = "es"
		}
	}
	if region == "" && os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		region = hostRegion // the profile may still set one; the flag and env win over the host
	}
	return region, service
}

// awsHostRegion extracts region and service from an Amazon OpenSearch
// endpoint host name; both are empty for other hosts.
func awsHostRegion(host string) (region, service string) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, svc := range []string{"aoss", "es"} {
		if rest, ok := strings.CutSuffix(host, "."+svc+".amazonaws.com"); ok {
			labels := strings.Split(rest, ".")
			return labels[len(labels)-1], svc
		}
	}
	return "", ""
}

// loadAWSConfig loads the standard AWS configuration chain: environment,
// shared config and credentials files (AWS_PROFILE), web identity tokens
// (IRSA: AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE), ECS container and EC2
// instance roles. Credentials are fetched lazily, cached, and refreshed
// before they expire.
func loadAWSConfig(ctx context.Context, region string) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	return awsconfig.LoadDefaultConfig(ctx, opts...)
}

// Kafka SASL mechanisms (--kafka-sasl).
const (
	saslPlain       = "plain"
	saslScram256    = "scram-sha-256"
	saslScram512    = "scram-sha-512"
	saslMSKIAM      = "aws-msk-iam"
	saslOAuthBearer = "oauthbearer"
)

// kafkaSASLUsage documents --kafka-sasl.
const kafkaSASLUsage = "SASL mechanism: plain, scram-sha-256, scram-sha-512 (with --kafka-username/--kafka-password), " +
	"aws-msk-iam (Amazon MSK IAM; credentials from the standard AWS chain, refreshed; region from the broker host names or AWS_REGION; implies --kafka-tls) " +
	"or oauthbearer (token from --kafka-oauth-token or --kafka-oauth-token-file)"

// kafkaSASL returns the SASL option of k (nil for none) and whether the
// mechanism needs TLS.
func kafkaSASL(k *kafkaFlags) (kgo.Opt, bool, error) {
	mech := strings.ToLower(k.saslMechanism)
	if mech != saslOAuthBearer && (k.oauthToken != "" || k.oauthTokenFile != "") {
		return nil, false, usageError{fmt.Errorf("flags --kafka-oauth-token/--kafka-oauth-token-file need --kafka-sasl oauthbearer")}
	}
	var m sasl.Mechanism
	tls := false
	switch mech {
	case "":
		return nil, false, nil
	case saslPlain:
		m = plain.Auth{User: k.username, Pass: k.password}.AsMechanism()
	case saslScram256:
		m = scram.Auth{User: k.username, Pass: k.password}.AsSha256Mechanism()
	case saslScram512:
		m = scram.Auth{User: k.username, Pass: k.password}.AsSha512Mechanism()
	case saslMSKIAM:
		if k.username != "" || k.password != "" {
			return nil, false, usageError{fmt.Errorf("flag --kafka-sasl aws-msk-iam: --kafka-username/--kafka-password are not used; credentials come from the AWS chain")}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cfg, err := loadAWSConfig(ctx, "")
		cancel()
		if err != nil {
			return nil, false, fmt.Errorf("flag --kafka-sasl aws-msk-iam: loading the AWS configuration: %w", err)
		}
		m = mskIAM(cfg.Credentials)
		tls = true
	case saslOAuthBearer:
		if (k.oauthToken == "") == (k.oauthTokenFile == "") {
			return nil, false, usageError{fmt.Errorf("flag --kafka-sasl oauthbearer needs exactly one of --kafka-oauth-token and --kafka-oauth-token-file")}
		}
		if k.oauthTokenFile != "" {
			if _, err := readToken(k.oauthTokenFile); err != nil {
				return nil, false, usageError{fmt.Errorf("flag --kafka-oauth-token-file: %w", err)}
			}
		}
		m = oauthBearer(k.oauthToken, k.oauthTokenFile)
	default:
		return nil, false, usageError{fmt.Errorf("flag --kafka-sasl: %q is not plain, scram-sha-256, scram-sha-512, aws-msk-iam or oauthbearer", k.saslMechanism)}
	}
	return kgo.SASL(m), tls, nil
}

// mskIAM is the AWS_MSK_IAM mechanism with credentials from creds, asked
// for at every authentication (the provider caches and refreshes them, so a
// rotated web-identity or instance-role credential is picked up).
func mskIAM(creds aws.CredentialsProvider) sasl.Mechanism {
	return saslaws.ManagedStreamingIAM(func(ctx context.Context) (saslaws.Auth, error) {
		if creds == nil {
			return saslaws.Auth{}, fmt.Errorf("aws-msk-iam: no AWS credentials found (environment, profile, web identity or instance role)")
		}
		c, err := creds.Retrieve(ctx)
		if err != nil {
			return saslaws.Auth{}, fmt.Errorf("aws-msk-iam: AWS credentials: %w", err)
		}
		return saslaws.Auth{AccessKey: c.AccessKeyID, SecretKey: c.SecretAccessKey, SessionToken: c.SessionToken, UserAgent: "reindexer/" + version}, nil
	})
}

// oauthBearer is the OAUTHBEARER mechanism with a fixed token, or with the
// token read from file at every authentication (so a token that a sidecar or
// a projected volume rotates is picked up when the broker asks the client
// to re-authenticate).
func oauthBearer(token, file string) sasl.Mechanism {
	return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
		if file == "" {
			return oauth.Auth{Token: token}, nil
		}
		t, err := readToken(file)
		if err != nil {
			return oauth.Auth{}, fmt.Errorf("oauthbearer: %w", err)
		}
		return oauth.Auth{Token: t}, nil
	})
}

// readToken reads a bearer token from file, trimming white space.
func readToken(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading the token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("token file %s is empty", file)
	}
	return t, nil
}
