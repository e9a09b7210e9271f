{% test expression_is_true(model, expression, column_name=none) %}
{#- Fails with every row for which the boolean SQL expression is not true (false or null). On a
    column, the expression is applied to it: `expression: ">= 0"`. -#}
select *
from {{ model }}
where not coalesce(({{ column_name ~ ' ' if column_name }}{{ expression }}), false)
{% endtest %}
