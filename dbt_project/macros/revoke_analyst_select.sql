{% macro revoke_analyst_select() %}
    {#- Staging and intermediate relations read raw data with their owner's rights: the analyst role
        (which gets SELECT on everything the writer creates in marts, by default privileges) must not
        read raw data through them. Analysts read the marts instead. -#}
    revoke select on {{ this }} from {{ adapter.quote(env_var('RETAIL_DBT_ANALYST_ROLE', 'retail_analyst')) }}
{% endmacro %}
