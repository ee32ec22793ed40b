-- description: Revenue, orders and units per month and product category (completed orders).
-- key: month, category
-- check: min_rows(1)
-- Categories arrive in mixed case ("BOOKS", " kitchen "); silver trims, this capitalises.
-- Lines with a product that is not in the catalogue count under "Unknown".
SELECT
    CAST(date_trunc('month', o.order_date) AS DATE) AS month,
    coalesce(upper(p.category[1]) || lower(p.category[2:]), 'Unknown') AS category,
    count(DISTINCT o.order_id) AS orders,
    sum(l.quantity) AS units,
    round(sum(l.quantity * l.unit_price * (1 - coalesce(l.discount, 0))), 2) AS revenue
FROM silver.orders AS o
JOIN silver.order_lines AS l ON l.order_id = o.order_id
LEFT JOIN silver.products AS p ON p.product_id = l.product_id
WHERE o.status = 'completed'
  AND o.order_date IS NOT NULL
  AND l.quantity > 0  -- a negative quantity is a data error, not a return
GROUP BY ALL
ORDER BY month, category
