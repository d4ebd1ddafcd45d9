package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Querier is the DynamoDB call the ledger's readers make.
type Querier interface {
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

var _ Querier = (*dynamodb.Client)(nil)

// Selection is which items Read returns: one owner's (the owner index,
// the only one a launcher may read, and only with her own user ID) or one
// family's (the family index, operators'); with both, the owner's of that
// family. Since bounds createdAt from below (zero: all).
type Selection struct {
	Owner, Family string
	Since         time.Time
}

// Read is the selection's items, newest first, every page of them.
func Read(ctx context.Context, db Querier, table string, sel Selection) ([]Item, error) {
	u := newUpdate()
	index, key, value := OwnerIndex, AttrOwner, sel.Owner
	if sel.Owner == "" {
		index, key, value = FamilyIndex, AttrFamily, sel.Family
	}
	if value == "" {
		return nil, errors.New("ledger: read: no owner or family")
	}
	cond := u.name(key) + " = " + u.value(str(value))
	if !sel.Since.IsZero() {
		cond += " AND " + u.name(AttrCreatedAt) + " >= " + u.value(tm(sel.Since))
	}
	in := &dynamodb.QueryInput{
		TableName:              aws.String(table),
		IndexName:              aws.String(index),
		KeyConditionExpression: aws.String(cond),
		ScanIndexForward:       aws.Bool(false),
	}
	if sel.Owner != "" && sel.Family != "" {
		in.FilterExpression = aws.String(u.name(AttrFamily) + " = " + u.value(str(sel.Family)))
	}
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = u.names, u.values
	var out []Item
	pages := dynamodb.NewQueryPaginator(db, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ledger: query %s: %w", index, err)
		}
		for _, m := range page.Items {
			out = append(out, decode(m))
		}
	}
	return out, nil
}
