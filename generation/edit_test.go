package generation_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/imaged/imaged"
	"github.com/imaged/imaged/generation"
	"github.com/imaged/imaged/images"
	"github.com/imaged/imaged/provider/builtin"
)

func (f *fixture) upload(t *testing.T, owner string, data []byte) *imaged.Image {
	t.Helper()
	img, err := f.images.Store(context.Background(), images.NewImage{Owner: owner, Filename: "src.png", Source: imaged.SourceUpload}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestEditJobs(t *testing.T) {
	ctx := context.Background()

	t.Run("an_edit_job_makes_edits_of_its_source", func(t *testing.T) {
		f := newFixture(t)
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{builtin.New()}, DefaultProvider: "builtin"})
		src := f.upload(t, alice, pngBytes(60, 20, 3)) // 3:1: nearest is 16:9
		v, err := svc.SubmitEdit(ctx, alice, generation.EditRequest{Request: generation.Request{Prompt: "snow"}, Image: src.ID})
		if err != nil {
			t.Fatal(err)
		}
		if v.EditOf != src.ID || v.Request.AspectRatio != "16:9" {
			t.Errorf("job edits %q at %q", v.EditOf, v.Request.AspectRatio)
		}
		if ran, err := svc.RunOne(ctx); !ran || err != nil {
			t.Fatalf("RunOne = %v, %v", ran, err)
		}
		got, err := svc.Job(ctx, alice, v.ID)
		if err != nil || got.Status != imaged.JobSucceeded || len(got.Images) != 1 || got.EditOf != src.ID {
			t.Fatalf("job %+v, %v", got, err)
		}
		if img := got.Images[0]; img.Source != imaged.SourceEdit || img.ParentID != src.ID || img.Generation.AspectRatio != "16:9" {
			t.Errorf("edit %+v", img)
		}
	})

	t.Run("a_source_deleted_before_the_run_fails_the_job_and_charges_nothing", func(t *testing.T) {
		f := newFixture(t)
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{builtin.New()}, DefaultProvider: "builtin",
			Quota: imaged.QuotaLimits{ImagesPerDay: 1}})
		src := f.upload(t, alice, pngBytes(8, 8, 1))
		v, err := svc.SubmitEdit(ctx, alice, generation.EditRequest{Request: generation.Request{Prompt: "x"}, Image: src.ID})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.images.Delete(ctx, alice, src.ID); err != nil {
			t.Fatal(err)
		}
		if ran, _ := svc.RunOne(ctx); !ran {
			t.Fatal("no job ran")
		}
		got, _ := svc.Job(ctx, alice, v.ID)
		if got.Status != imaged.JobFailed || got.ErrorCode != imaged.ENotFound {
			t.Errorf("job %s %s %q", got.Status, got.ErrorCode, got.ErrorMessage)
		}
		// The quota of one image a day is still there.
		if _, err := svc.Generate(ctx, alice, generation.Request{Prompt: "y"}); err != nil {
			t.Errorf("after the failed edit: %v", err)
		}
	})

	t.Run("other_owners_source_is_not_found", func(t *testing.T) {
		f := newFixture(t)
		svc := f.service(t, generation.Config{Providers: []imaged.Generator{builtin.New()}, DefaultProvider: "builtin"})
		src := f.upload(t, alice, pngBytes(8, 8, 1))
		_, err := svc.Edit(ctx, bob, generation.EditRequest{Request: generation.Request{Prompt: "x"}, Image: src.ID})
		if imaged.ErrCode(err) != imaged.ENotFound {
			t.Errorf("bob's edit of alice's image: %v", err)
		}
	})
}
