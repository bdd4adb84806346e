package imaged

import (
	"fmt"
	"time"
)

// QuotaWindow is the rolling window of QuotaLimits.ImagesPerDay.
const QuotaWindow = 24 * time.Hour

// QuotaCharge is one reservation as the daily limit counts it: when it was
// made and how many images it weighs (those charged, or those reserved while
// it is not finished).
type QuotaCharge struct {
	At     time.Time
	Images int
}

// CheckDailyQuota decides whether n more images fit under limit, given the
// charges in the window ending at now, oldest first. When they do not, the
// error's RetryAfter is when enough of the oldest charges leave the window
// for n to fit (the whole window when n alone is over the limit). Every
// QuotaStore applies the same rule with it.
func CheckDailyQuota(charges []QuotaCharge, n, limit int, now time.Time) error {
	used := 0
	for _, c := range charges {
		used += c.Images
	}
	if used+n <= limit {
		return nil
	}
	retry := QuotaWindow
	for _, c := range charges {
		used -= c.Images
		if used+n <= limit {
			retry = c.At.Add(QuotaWindow).Sub(now)
			break
		}
	}
	return QuotaExceeded(fmt.Sprintf("at most %d images may be generated per 24 hours", limit), retry)
}

// QuotaExceeded is the refusal of a generation over a quota, with a
// RetryAfter bounded to [1s, QuotaWindow].
func QuotaExceeded(reason string, retry time.Duration) *Error {
	return &Error{Code: EQuotaExceeded, Message: "Image generation quota exceeded: " + reason,
		RetryAfter: min(max(retry, time.Second), QuotaWindow)}
}
