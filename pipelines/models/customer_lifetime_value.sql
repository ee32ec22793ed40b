-- description: Per customer: first and last completed order, orders, lifetime revenue and average order value.
-- key: customer_id
-- check: not_null(signup_date)
WITH order_totals AS (
    SELECT order_id, sum(quantity * unit_price * (1 - coalesce(discount, 0))) AS amount
    FROM silver.order_lines
    WHERE quantity > 0
    GROUP BY order_id
)
SELECT
    c.customer_id,
    c.name,
    c.country,
    coalesce(c.segment, 'unknown') AS segment,
    c.signup_date,
    min(o.order_date) AS first_order,
    max(o.order_date) AS last_order,
    count(o.order_id) AS orders,
    round(coalesce(sum(t.amount), 0), 2) AS lifetime_revenue,
    round(sum(t.amount) / nullif(count(o.order_id), 0), 2) AS avg_order_value
FROM silver.customers AS c
LEFT JOIN silver.orders AS o ON o.customer_id = c.customer_id AND o.status = 'completed'
LEFT JOIN order_totals AS t ON t.order_id = o.order_id
GROUP BY ALL
ORDER BY lifetime_revenue DESC
