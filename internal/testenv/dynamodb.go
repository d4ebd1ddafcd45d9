package testenv

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bastion-ttl/bastion-ttl/internal/ledger"
)

// MotoDynamoDB starts moto_server and returns its URL and a real DynamoDB
// client pointed at it (moto's DynamoDB needs no mending).
func MotoDynamoDB(t testing.TB) (string, *dynamodb.Client) {
	t.Helper()
	url := Moto(t)
	return url, DynamoDBClient(url)
}

// DynamoDBClient is the real SDK client for a local endpoint.
func DynamoDBClient(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "test", ""),
	})
}

// CreateLedgerTable creates the ledger's table as template.yaml declares
// it: the task ARN as the key, and the two indexes.
func CreateLedgerTable(t testing.TB, c *dynamodb.Client, name string) {
	t.Helper()
	if err := MakeLedgerTable(context.Background(), c, name); err != nil {
		t.Fatal(err)
	}
}

// MakeLedgerTable is CreateLedgerTable's core, for the demo.
func MakeLedgerTable(ctx context.Context, c *dynamodb.Client, name string) error {
	index := func(name, partition string) types.GlobalSecondaryIndex {
		return types.GlobalSecondaryIndex{
			IndexName: aws.String(name),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(partition), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(ledger.AttrCreatedAt), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}
	}
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(ledger.AttrTaskARN), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(ledger.AttrOwner), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(ledger.AttrFamily), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(ledger.AttrCreatedAt), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema:              []types.KeySchemaElement{{AttributeName: aws.String(ledger.AttrTaskARN), KeyType: types.KeyTypeHash}},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{index(ledger.OwnerIndex, ledger.AttrOwner), index(ledger.FamilyIndex, ledger.AttrFamily)},
	})
	if err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	return nil
}
