package s3test

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// TestStart checks that tests share one gateway, each with its own empty bucket that the
// returned credentials can use.
func TestStart(t *testing.T) {
	ep1, ak, sk, b1 := Start(t)
	ep2, _, _, b2 := Start(t)
	if ep1 != ep2 {
		t.Errorf("two gateways started: %s and %s", ep1, ep2)
	}
	if b1 == b2 {
		t.Errorf("both tests got bucket %s", b1)
	}
	client := s3.New(s3.Options{
		Region: region, BaseEndpoint: aws.String(ep1), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(ak, sk, ""),
	})
	ctx := context.Background()
	for _, b := range []string{b1, b2} {
		out, err := client.ListObjects(ctx, &s3.ListObjectsInput{Bucket: aws.String(b)})
		if err != nil {
			t.Fatalf("list bucket %s: %v", b, err)
		}
		if len(out.Contents) != 0 {
			t.Errorf("bucket %s is not empty: %d objects", b, len(out.Contents))
		}
	}
}
